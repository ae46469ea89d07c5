"""A training step captured once and replayed: CUDA graphs for small, launch-bound models.

The shipped encoders are small, so on a GPU an eager step spends most of its time launching
kernels (forward, backward and the optimizer are hundreds of launches). A CUDA graph records
them once and replays them with one launch. What the graph needs, and how the engine gives it:

* **static shapes and addresses**: each batch is copied into buffers allocated at capture
  time. Full batches (``batch_size`` rows) replay the graph; the last, shorter batch of an
  epoch runs the eager step, so every sample is still seen once per epoch and results keep the
  meaning they have on a CPU;
* **no host synchronisation inside the step**: masks, MMA and the zero-fill are drawn before
  the step (``Trainer.prepare_batch``), outside the graph;
* **gradients that stay where they are**: after the first step the engine zeroes gradients
  in place instead of freeing them, so the graph reads and writes the same tensors;
* **warm-up**: the first ``warmup`` steps run eagerly on a side stream (they are ordinary
  training steps), so that libraries and the optimizer state are initialised before capture.

If capture fails (a custom loss that synchronises, an operation CUDA graphs cannot record) a
warning says why and training continues eagerly; the eager step is also the reference that the
captured step is tested against (notebook 09, ``make gpu-check``).
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from torch import Tensor

StepFn = Callable[[dict[str, Tensor], dict[str, Tensor], Tensor], Tensor]
WARMUP_STEPS = 3


class StepGraph(Protocol):
    """What :class:`CapturedStep` needs from a graph: record a function once, replay it."""

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        """Record ``fn`` without running it; return its (static) output tensor."""
        ...

    def replay(self) -> None:
        """Run what was recorded, on the current contents of the static buffers."""
        ...


class CudaStepGraph:
    """A :class:`torch.cuda.CUDAGraph` behind the :class:`StepGraph` interface."""

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        with torch.cuda.graph(self.graph):
            return fn()

    def replay(self) -> None:
        self.graph.replay()


class RecordedStep:
    """The CPU stand-in of a graph: ``replay`` calls the recorded function again.

    It has the semantics of a CUDA graph that matter to the engine (capture does not run the
    step, replay reads the static buffers and writes the static output), so tests on a CPU check
    the buffer handling of :class:`CapturedStep` against the eager step.
    """

    def __init__(self) -> None:
        self.fn: Callable[[], Tensor] | None = None
        self.out = torch.zeros(())

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        self.fn = fn
        return self.out

    def replay(self) -> None:
        assert self.fn is not None, "replay() before capture()"
        self.out.copy_(self.fn())


class CapturedStep:
    """Replays one captured training step for every batch of ``rows`` samples.

    ``eager(x, present, y)`` is the step (forward, backward, optimizer; returns the detached
    loss); it must zero gradients in place. Batches of another size run ``eager``. A replayed
    loss is the graph's static output: the next replay overwrites it, so read it (as
    ``Trainer.fit_epoch`` does, adding it to the epoch total) before the next step.
    """

    def __init__(self, eager: StepFn, rows: int, new_graph: Callable[[], StepGraph],
                 warmup: int = WARMUP_STEPS) -> None:
        self.eager, self.rows, self.new_graph, self.warmup = eager, rows, new_graph, warmup
        self.graph: StepGraph | None = None
        self.failed = False
        self.warm = 0
        self.replays = 0
        self.static: tuple[dict[str, Tensor], dict[str, Tensor], Tensor] = (
            {}, {}, torch.empty(0))
        self.out = torch.empty(0)

    def __call__(self, x: dict[str, Tensor], present: dict[str, Tensor], y: Tensor) -> Tensor:
        # Only the batch size varies between the engine's batches (modalities, trailing shapes,
        # dtypes and device are the data's), so the row count decides what may replay.
        if self.failed or y.shape[0] != self.rows:
            return self.eager(x, present, y)
        graph = self.graph
        if graph is None:
            if self.warm < self.warmup:
                self.warm += 1
                with _side_stream(y.device):
                    return self.eager(x, present, y)
            graph = self._capture(x, present, y)  # its static buffers hold this batch
            if graph is None:
                return self.eager(x, present, y)
        else:
            sx, sp, sy = self.static
            for m, t in x.items():
                sx[m].copy_(t)
            for m, t in present.items():
                sp[m].copy_(t)
            sy.copy_(y)
        graph.replay()
        self.replays += 1
        return self.out

    def _capture(self, x: dict[str, Tensor], present: dict[str, Tensor], y: Tensor
                 ) -> StepGraph | None:
        """Record the step on static copies of this batch; None (with a warning) on failure."""
        static = ({m: t.clone() for m, t in x.items()},
                  {m: t.clone() for m, t in present.items()}, y.clone())
        graph = self.new_graph()
        try:
            out = graph.capture(lambda: self.eager(*static))
        except Exception as exc:  # noqa: BLE001 - any failure means: train eagerly
            self.failed = True
            warnings.warn(f"the training step could not be captured ({type(exc).__name__}: "
                          f"{exc}); training continues with the eager step. Pass "
                          "TrainConfig(capture=False) to skip the attempt.", stacklevel=4)
            return None
        self.graph, self.static, self.out = graph, static, out
        return graph


@contextlib.contextmanager
def _side_stream(device: torch.device) -> Iterator[None]:
    """Warm-up steps on a side stream, as CUDA graph capture expects; nothing on a CPU."""
    if device.type != "cuda":
        yield
        return
    current = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        yield
    current.wait_stream(side)
