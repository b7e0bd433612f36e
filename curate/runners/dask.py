"""Beam's DaskRunner, fixed for graphs with tagged outputs and side inputs (every curate stage).

Beam 2.77's DaskRunner keys Dask bags by producing transform, so a ParDo's main and tagged
outputs (kept batches, dropped ledger rows) land mixed in one bag, and it computes only the
last transform visited. Here bags are keyed by PCollection: a ParDo yields (tag, value) pairs
that each output filters; side inputs are computed once as Dask dependencies (not recomputed
inside every task); every sink is computed; input files get one partition each, so reading,
matching and scoring spread over the workers; a DoFn is set up once per worker thread and
reused by the bundles that follow (models and matchers load once, not per partition); the graph
is computed unoptimized, so every transform runs once per partition whatever reads its outputs
(fused chains recomputed a download or a scoring step once per consumer).

`--runner DaskRunner` maps here (curate.run). Beam's DaskOptions apply:
`--dask_client_address tcp://scheduler:8786` (default: a LocalCluster on this machine),
`--dask_npartitions` / `--dask_partition_size` for `beam.Create` inputs.
"""
from __future__ import annotations

import threading
import uuid

from apache_beam import pvalue
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.dask import dask_runner as beam_dask
from apache_beam.runners.dask.overrides import (
    _Create, _Flatten, _GroupAlsoByWindow, _GroupByKeyOnly, _Reshuffle, dask_overrides)
from apache_beam.runners.dask.transform_evaluator import Create, GroupByKey, get_windowed_value
from apache_beam.transforms.core import DoFn, ParDo
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

DaskOptions = beam_dask.DaskOptions
_MAIN = None  # the main output's tag
# a reshuffle only rebalances, and grouping by window follows the group by key: no-ops here
_IDENTITY = (_Reshuffle, _GroupAlsoByWindow)
_fns: dict = {}  # (run id, transform label, thread) -> DoFnSignature set up in this worker process


class _Collect(Receiver):
    """Receiver that keeps (tag, WindowedValue) pairs."""

    def __init__(self, tag, out: list):
        super().__init__()
        self.tag, self.out = tag, out

    def receive(self, windowed_value):
        self.out.append((self.tag, windowed_value))


class _Receivers(dict):
    def __init__(self, out: list):
        super().__init__()
        self.out = out

    def __missing__(self, tag):
        receiver = self[tag] = _Collect(tag, self.out)
        return receiver


def _signature(key: tuple, do_fn: DoFn) -> DoFnSignature:
    """The DoFn of this transform already set up in this thread, or this copy, set up now."""
    slot = (*key, threading.get_ident())
    signature = _fns.get(slot)
    if signature is None:
        for stale in [s for s in _fns if s[0] != key[0]]:  # a worker outlives a run: forget older ones
            del _fns[stale]
        signature = _fns[slot] = DoFnSignature(do_fn)
        signature.setup_lifecycle_method.method_value()
    return signature


def _side_input_maps(specs, values):
    return [SideInputMap(view_class, options, [_windowed(v) for v in vals])
            for (view_class, options), vals in zip(specs, values)]


def _windowed(value):
    return value if isinstance(value, WindowedValue) else WindowedValue(value, 0, (GlobalWindow(),))


def _run_bundle(items, key, do_fn, label, args, kwargs, window_fn, side_specs, *side_values):
    """One Dask partition as one Beam bundle; returns (tag, value) pairs."""
    out: list = []
    receivers = _Receivers(out)
    handler = _OutputHandler(window_fn=window_fn, main_receivers=receivers[_MAIN],
                             tagged_receivers=receivers, per_element_output_counter=None,
                             output_batch_converter=None, process_yields_batches=False,
                             process_batch_yields_elements=False)
    invoker = DoFnInvoker.create_invoker(
        _signature(key, do_fn), handler, context=DoFnContext(label, state=None),
        side_inputs=_side_input_maps(side_specs, side_values), input_args=args,
        input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam())
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(get_windowed_value(item, window_fn))
    invoker.invoke_finish_bundle()
    return [(tag, wv.value) for tag, wv in out]


def _concat(parts):
    return [x for part in parts for x in part]


def _values_of(tag):
    def select(pairs):
        return [value for t, value in pairs if t == tag]
    return select


class _Visitor(PipelineVisitor):
    def __init__(self, bag_kwargs: dict):
        self.bag_kwargs = bag_kwargs
        self.run_id = uuid.uuid4().hex
        self.bags: dict = {}  # PCollection -> dask Bag
        self.consumed: set = set()  # PCollections some transform reads as main input

    def visit_transform(self, node) -> None:
        import dask.bag as db

        inputs = [i for i in node.inputs if not isinstance(i, pvalue.PBegin)]
        self.consumed.update(inputs)
        transform = node.transform
        if isinstance(transform, _Create):
            bag = Create(node, bag_kwargs=self.bag_kwargs).apply(None)
        elif isinstance(transform, _Flatten):
            bag = db.concat([self.bags[i] for i in inputs])
        elif isinstance(transform, _GroupByKeyOnly):
            bag = GroupByKey(node).apply(self.bags[inputs[0]])
        elif type(transform) is ParDo:
            self._par_do(node, inputs[0])
            return
        elif isinstance(transform, _IDENTITY):
            bag = self.bags[inputs[0]]
        else:
            raise NotImplementedError(f"DaskRunner: no translation for {type(transform).__name__} "
                                      f"({node.full_label})")
        for output in node.outputs.values():
            self.bags[output] = bag

    def _par_do(self, node, main_input) -> None:
        import dask

        transform = node.transform
        args, kwargs = transform.raw_side_inputs
        side_specs, side_values = [], []
        for side in node.side_inputs:
            side_specs.append((type(side), side._view_options()))
            # optimize_graph=False keeps the bag's own keys: the side input reuses its tasks
            side_values.append(dask.delayed(_concat)(self.bags[side.pvalue].to_delayed(optimize_graph=False)))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        pairs = self.bags[main_input].map_partitions(
            _run_bundle, (self.run_id, node.full_label), transform.fn, node.full_label,
            list(args), kwargs, window_fn, side_specs, *side_values)
        for tag, output in node.outputs.items():
            self.bags[output] = pairs.map_partitions(_values_of(tag))

    def sinks(self) -> list:
        return [bag for pcoll, bag in self.bags.items() if pcoll not in self.consumed]


class DaskRunner(beam_dask.DaskRunner):
    """Runs a curate graph on a dask.distributed cluster; see the module docstring."""

    def run_pipeline(self, pipeline, options):
        import dask.distributed as ddist

        dask_options = options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        bag_kwargs = bag_kwargs or {"partition_size": 1}  # one input file per task
        client = ddist.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        visitor = _Visitor(bag_kwargs)
        pipeline.visit(visitor)
        # Dask's graph optimization fuses each sink's chain into new keys: a transform shared by
        # two sinks (a ParDo's kept and dropped outputs) then ran once per sink, every URL fetched
        # twice. Unoptimized, each transform's partition is one task, run once.
        futures = client.compute(visitor.sinks(), optimize_graph=False)
        return _Result(client, futures)


class _Result(beam_dask.DaskRunnerResult):
    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.client.close()  # also stops the LocalCluster it started, if any
