"""`--dry_run` on Dataflow: the job is translated and validated, nothing is submitted.

The report names the stages of the graph and the resource hints (GPU, memory) each one
carries, read back from the portable pipeline proto that Dataflow would receive: per-transform
hints live on the transform's environment.
"""
from __future__ import annotations

from apache_beam.portability.common_urns import resource_hints as hint_urns

HINT_NAMES = {
    hint_urns.ACCELERATOR.urn: "accelerator",
    hint_urns.MIN_RAM_BYTES.urn: "min_ram",
    hint_urns.CPU_COUNT.urn: "cpu_count",
}


def stage_of(unique_name: str, depth: int = 1) -> str:
    return "/".join(unique_name.split("/")[:depth])


def transform_hints(proto) -> dict[str, dict[str, str]]:
    """Leaf transform name -> {hint: value} for the transforms that carry hints."""
    environments = proto.components.environments
    found = {}
    for transform in proto.components.transforms.values():
        if transform.subtransforms or not transform.environment_id:
            continue
        hints = environments[transform.environment_id].resource_hints
        if hints:
            found[transform.unique_name] = {HINT_NAMES.get(u, u): v.decode("utf-8", "replace") for u, v in hints.items()}
    return found


def dry_run_report(result, header: dict) -> dict:
    proto = result.job.proto_pipeline
    # Dataflow's overrides leave "ref_AppliedPTransform_..." placeholders: not stages of ours
    names = [t.unique_name for t in proto.components.transforms.values()
             if t.unique_name and not t.unique_name.startswith("ref_AppliedPTransform")]
    by_stage: dict[str, dict[str, str]] = {}
    for name, hints in transform_hints(proto).items():  # by stage and sub-stage (Score/Score_dfn)
        by_stage.setdefault(stage_of(name, 2), {}).update(hints)
    return {
        **header,
        "dry_run": True,
        "job_name": result.job.google_cloud_options.job_name,
        "stages": sorted({stage_of(n) for n in names}),
        "transforms": len(names),
        "resource_hints": dict(sorted(by_stage.items())),
        "pipeline_proto": proto,
    }


def format_dry_run(report: dict) -> str:
    lines = [f"curate {report['pipeline']}: dry run on {report['runner']}: job {report['job_name']} "
             f"built and validated ({report['transforms']} transforms), nothing submitted",
             f"  stages: {', '.join(report['stages'])}"]
    for stage, hints in report["resource_hints"].items():
        lines.append(f"  {stage}: " + ", ".join(f"{k}={v}" for k, v in sorted(hints.items())))
    return "\n".join(lines)
