"""The same graph on other runners: Beam's portable path (what Spark and Flink run), Dask with
several worker processes, and Dataflow's dry run (job built and validated, never submitted)."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from curate.run import main, make_runner, run
from curate.runners.dry_run import transform_hints
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.mounted_fs import PREFIX, mounted  # noqa: F401  (fixture)

MIN_RAM = "beam:resources:min_ram_bytes:v1"
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

    from curate.metaclip.metadata import load_metadata

    inputs = write_url_lists(tmp_path / "in", parts=4)
    metadata = tmp_path / "metadata.json"  # a smaller list: each worker process builds its matcher
    metadata.write_text(json.dumps(load_metadata()[:20000]))
    # dedup's grouping steps on Dask are checked by test_shard_writer (same shard bytes); here without
    # them the run stays short (each GroupByKey is a Dask shuffle of its own)
    args = ("--input", inputs, "--download=false", "--batch_size", "100", "--metadata", str(metadata),
            "--dedup", "none")
    fn_stats = run_curate(*args, output=tmp_path / "fn")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
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


def staged_names(proto) -> set[str]:
    from apache_beam.portability.api import beam_runner_api_pb2 as api

    return {api.ArtifactStagingToRolePayload.FromString(d.role_payload).staged_name
            for env in proto.components.environments.values() for d in env.dependencies}


def test_dataflow_dry_run_builds_the_job_and_submits_nothing(mounted):
    """--setup_file: the package is built (sdist) and staged for the workers; nothing is uploaded."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    report = run([*DATAFLOW, "--input", write_mounted_rows(mounted), "--output", f"{PREFIX}out",
                  "--setup_file", os.path.join(repo, "setup.py")])
    assert report["dry_run"] and report["runner"] == "DataflowRunner"
    assert {"Read", "MetaCLIP", "ImageFacts", "WriteLedger", "WriteShards", "WriteUrls", "WriteStats"} \
        <= set(report["stages"])
    proto = report["pipeline_proto"]
    envs = proto.components.environments
    assert envs and all(e.urn == "beam:env:docker:v1" for e in envs.values())
    assert "workflow.tar.gz" in staged_names(proto)  # the curate sdist the workers pip install
    assert report["resource_hints"] == {}  # no stage asks for a GPU or memory unless told
    assert not os.path.exists(os.path.join(mounted, "out"))  # nothing ran


def write_mounted_rows(mounted, n: int = 50) -> str:
    os.makedirs(os.path.join(mounted, "in"), exist_ok=True)
    with open(os.path.join(mounted, "in", "rows.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in laion_rows()[:n])
    return f"{PREFIX}in/rows.jsonl"


def test_dataflow_dry_run_puts_the_gpu_on_the_model_stage_only(mounted):
    """dfn recipe: --accelerator reaches the open_clip forward (RunInference) and nothing else."""
    gpu = "type:nvidia-l4;count:1;install-nvidia-driver"
    report = run([*DATAFLOW, "--pipeline", "dfn", "--input", write_mounted_rows(mounted), "--output",
                  f"{PREFIX}out", "--accelerator", gpu, "--resource_hints", "min_ram=8GB"])
    assert {"Read", "ImageFacts", "BasicFilter", "Score", "WriteShards", "WriteLedger"} <= set(report["stages"])
    hints = transform_hints(report["pipeline_proto"])
    on_gpu = sorted(name for name, h in hints.items() if h.get("accelerator") == gpu)
    assert on_gpu and all(name.startswith("Score/Score_dfn/") for name in on_gpu), on_gpu
    assert any("RunInference" in name for name in on_gpu)
    names = [t.unique_name for t in report["pipeline_proto"].components.transforms.values()]
    assert any(n.startswith("Score/Cut/") for n in names) and not any(n.startswith("Score/Cut/") for n in on_gpu)
    assert report["resource_hints"]["Score/Score_dfn"]["accelerator"] == gpu
    envs = report["pipeline_proto"].components.environments.values()
    assert all(e.resource_hints[MIN_RAM] == str(8 * 10**9).encode() for e in envs)  # global hint: every step


@pytest.mark.parametrize("args,message", [
    (["--input", SAMPLE, "--output", "gs://my-bucket/out"], "--input: DataflowRunner workers cannot reach"),
    (["--output", "gs://my-bucket/out"], "--input: DataflowRunner workers cannot read the bundled sample"),
    (["--input", "mnt://x.jsonl", "--output", "/tmp/local-out"], "--output: DataflowRunner workers cannot reach"),
    (["--input", "mnt://x.jsonl", "--output", "mnt://o", "--accelerator", "nvidia-l4"], "--accelerator: 'nvidia-l4' names no type"),
    (["--input", "mnt://x.jsonl", "--output", "mnt://o", "--accelerator", "type:nvidia-l4;count:1",
      "--accelerator_stages", "Nope*"], "--accelerator_stages: nothing in this recipe's graph matches Nope*"),
])
def test_dataflow_refuses_flags_its_workers_cannot_use(args, message, capsys, mounted):
    with open(os.path.join(mounted, "x.jsonl"), "w") as f:
        f.write('{"url": "http://a/b.jpg", "caption": "a cat"}\n')
    assert main([*DATAFLOW, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_dry_run_is_refused_on_runners_that_would_run(tmp_path, capsys):
    assert main(["--dry_run=True", "--output", str(tmp_path / "o")]) == 2
    assert "--dry_run: only DataflowRunner" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
