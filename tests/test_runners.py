"""The same graph on other runners: Beam's portable path (what Spark and Flink run), Dask with
several worker processes, and Dataflow's dry run (job built and validated, never submitted)."""
from __future__ import annotations

import json
import os

import apache_beam as beam
import pandas as pd
import pytest

from curate.run import main, make_runner, run
from curate.runners.dry_run import transform_hints
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.mounted_fs import PREFIX, mounted  # noqa: F401  (fixture)

LEDGER_COLUMNS = ["uid", "status", "reason", "entry_ids", "metaclip_keep_prob"]
DATAFLOW = ["--runner", "DataflowRunner", "--project", "my-project", "--region", "us-central1",
            "--temp_location", "gs://my-bucket/tmp", "--dry_run=True", "--no_auth",
            "--sdk_location=container"]


def comparable(output) -> pd.DataFrame:
    ledger = read_ledger(output)[LEDGER_COLUMNS]
    ledger["entry_ids"] = ledger["entry_ids"].map(list)
    return ledger


def shard_bytes(output) -> dict[str, bytes]:
    folder = os.path.join(str(output), "shards")
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))
            if f.endswith((".tar", ".parquet"))}


def laion_rows() -> list[dict]:
    with open(os.path.join(SAMPLE, "pairs.jsonl")) as f:
        return [row for row in map(json.loads, f) if row.get("url")]


def write_url_lists(folder, parts: int) -> str:
    """The bundled sample's URL rows as several URL list files (several tasks to spread)."""
    rows = laion_rows()
    os.makedirs(folder, exist_ok=True)
    for i in range(parts):
        with open(os.path.join(folder, f"rows-{i}.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows[i::parts])
    return os.path.join(str(folder), "*.jsonl")


def test_portable_runner_writes_what_fnapi_writes(default_run, tmp_path):
    """PortableRunner with an embedded job server: the path SparkRunner and FlinkRunner take."""
    fn_out, fn_stats = default_run
    stats = run_curate("--runner", "PortableRunner", "--job_endpoint", "embed",
                       "--environment_type", "LOOPBACK", output=tmp_path)
    assert stats["runner"] == "PortableRunner"
    pd.testing.assert_frame_equal(comparable(tmp_path), comparable(fn_out))
    assert shard_bytes(tmp_path) == shard_bytes(fn_out)
    assert stats["kept"] == fn_stats["kept"] and stats["dropped_by_reason"] == fn_stats["dropped_by_reason"]


def test_dask_runner_on_a_local_cluster_of_worker_processes(tmp_path):
    from dask.distributed import Client, LocalCluster

    inputs = write_url_lists(tmp_path / "in", parts=4)
    args = ("--input", inputs, "--download=false", "--batch_size", "100")
    fn_stats = run_curate(*args, output=tmp_path / "fn")
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        stats = run_curate(*args, "--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address,
                           output=tmp_path / "dask")
        with Client(cluster) as client:
            tasks_per_worker = client.run(lambda dask_worker: dask_worker.state.transition_counter)
    assert sum(count > 0 for count in tasks_per_worker.values()) >= 2, tasks_per_worker
    assert stats["runner"] == "DaskRunner"
    assert stats["inputs"] == len(laion_rows()) and 0 < stats["kept"] < stats["inputs"]
    pd.testing.assert_frame_equal(comparable(tmp_path / "dask"), comparable(tmp_path / "fn"))
    urls = [pd.read_parquet(tmp_path / o / "curated_urls").sort_values("uid").reset_index(drop=True)
            for o in ("dask", "fn")]
    pd.testing.assert_frame_equal(*urls)
    assert {k: stats[k] for k in ("kept", "dropped_by_reason", "stages")} == \
        {k: fn_stats[k] for k in ("kept", "dropped_by_reason", "stages")}


@pytest.mark.parametrize("name", ["DaskRunner", "apache_beam.runners.dask.dask_runner.DaskRunner"])
def test_dask_runner_names_map_to_the_fixed_runner(name):
    from apache_beam.options.pipeline_options import PipelineOptions

    assert make_runner(PipelineOptions(["--runner", name])) == "curate.runners.dask.DaskRunner"


def test_dataflow_dry_run_builds_the_job_and_submits_nothing(mounted, tmp_path):
    os.makedirs(os.path.join(mounted, "in"))
    with open(os.path.join(mounted, "in", "rows.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in laion_rows()[:50])
    report = run([*DATAFLOW, "--input", f"{PREFIX}in/rows.jsonl", "--output", f"{PREFIX}out"])
    assert report["dry_run"] and report["runner"] == "DataflowRunner"
    assert {"Read", "MetaCLIP", "ImageFacts", "WriteLedger", "WriteShards", "WriteUrls", "WriteStats"} \
        <= set(report["stages"])
    proto = report["pipeline_proto"]
    envs = proto.components.environments
    assert envs and all(e.urn == "beam:env:docker:v1" for e in envs.values())
    assert report["resource_hints"] == {}  # no stage asks for a GPU or memory unless told
    assert not os.path.exists(os.path.join(mounted, "out"))  # nothing ran


def test_dataflow_dry_run_carries_resource_hints_to_the_hinted_stage_only(mounted):
    """The mechanism GPU placement uses: a hint on one stage's transform reaches its environment."""
    from curate.filters.image_facts import ImageFacts
    from curate.stage import ApplyStage
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions([*DATAFLOW, "--resource_hints", "min_ram=2GB"])
    p = beam.Pipeline(runner="DataflowRunner", options=options)
    batches = p | "Create" >> beam.Create([])
    hinted = ApplyStage(ImageFacts(), label="Score").with_resource_hints(
        accelerator="type:nvidia-l4;count:1;install-nvidia-driver")
    out = batches | "Score" >> hinted
    _ = out.kept | "After" >> beam.Map(lambda b: b)
    result = p.run()
    hints = transform_hints(result.job.proto_pipeline)
    accelerated = {name for name, h in hints.items() if "accelerator" in h}
    assert accelerated and all(name.startswith("Score/") for name in accelerated)
    assert all(h["min_ram"] == str(2 * 10**9) for h in hints.values())  # the global hint stays everywhere
    assert any(name.startswith("After") for name in hints)


@pytest.mark.parametrize("args,message", [
    (["--input", SAMPLE, "--output", "gs://my-bucket/out"], "--input: DataflowRunner workers cannot reach"),
    (["--output", "gs://my-bucket/out"], "--input: DataflowRunner workers cannot read the bundled sample"),
    (["--input", "mnt://x.jsonl", "--output", "/tmp/local-out"], "--output: DataflowRunner workers cannot reach"),
])
def test_dataflow_refuses_paths_its_workers_cannot_reach(args, message, capsys, mounted):
    with open(os.path.join(mounted, "x.jsonl"), "w") as f:
        f.write('{"url": "http://a/b.jpg", "caption": "a cat"}\n')
    assert main([*DATAFLOW, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_dry_run_is_refused_on_runners_that_would_run(tmp_path, capsys):
    assert main(["--dry_run=True", "--output", str(tmp_path / "o")]) == 2
    assert "--dry_run: only DataflowRunner" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
