"""The `veil` command: media in -> detect (+ track) -> plan -> render -> media out, + report.

`veil review PATH...` starts the review application instead (veil.review).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from veil import __version__
from veil.batch import BatchError, FileResult, FileSettings, Workers, redact_inputs, usable_cores
from veil.detect import PROFILES, DetectionProfile, detection_record
from veil.manifest import default_manifest
from veil.outputs import OutputClaims, OutputError, collect_inputs
from veil.photo import file_sha256
from veil.plan import PIXELATE_BLOCKS, Plan, PlanError, RenderSettings
from veil.report import report_paths, write_report
from veil.videofile import Encoding

app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
# Messages name user files: no markup or emoji codes ("photo [edited].jpg" must print as is), and
# no wrapping, so each error stays on one line whatever the terminal width.
err = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


class Mode(str, Enum):
    fill = "fill"
    pixelate = "pixelate"
    blur = "blur"


class ShapeOption(str, Enum):
    ellipse = "ellipse"
    box = "box"


def parse_color(text: str) -> tuple[int, int, int]:
    named = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    if text.lower() in named:
        return named[text.lower()]
    hexa = text.lstrip("#")
    if len(hexa) == 6:
        try:
            return tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            pass
    raise typer.BadParameter(f"{text!r} is not a colour: use black, white, gray or #RRGGBB")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def redact(
    ctx: typer.Context,
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Photos, videos or folders (searched recursively); with --plan, default: the plan's files.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file (one input only).")] = None,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", help="Write outputs here, mirroring input folders.")] = None,
    accurate: Annotated[bool, typer.Option("--accurate", help="More detection passes: higher recall, about 3x slower.")] = False,
    mode: Annotated[Mode, typer.Option(help="fill (safest), pixelate (at most --blocks across a face), blur (weakest: reversible by published attacks).")] = Mode.fill,
    color: Annotated[str, typer.Option(help="Fill colour: black, white, gray or #RRGGBB.")] = "black",
    shape: Annotated[ShapeOption, typer.Option(help="Shape of each hidden region.")] = ShapeOption.ellipse,
    blocks: Annotated[int, typer.Option(min=1, max=8, help="pixelate: blocks across a face (at most 8).")] = PIXELATE_BLOCKS,
    save_plan: Annotated[Optional[Path], typer.Option("--save-plan", help="Write the redaction plan (JSON) here.")] = None,
    plan_file: Annotated[Optional[Path], typer.Option("--plan", help="Render this (edited) plan instead of detecting.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the audit report (JSON, and HTML beside it).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Detect and plan only; write no media.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")] = False,
    crf: Annotated[Optional[int], typer.Option(min=0, max=63, help="Video quality (lower is better); default near-transparent for the codec.")] = None,
    codec: Annotated[Optional[str], typer.Option(help="Video codec: h264, h265, vp9, av1; default follows the input.")] = None,
    start: Annotated[Optional[float], typer.Option(min=0, help="Video: analyse from this second; frames before it are fully covered (see --only-range).")] = None,
    end: Annotated[Optional[float], typer.Option(min=0, help="Video: analyse up to this second; frames after it are fully covered (see --only-range).")] = None,
    only_range: Annotated[bool, typer.Option("--only-range", help="Video: leave frames outside --start/--end unredacted.")] = False,
    keep_subtitles: Annotated[bool, typer.Option("--keep-subtitles", help="Video: copy subtitle streams (dropped by default).")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Photos redacted at once, each in its own process (default: every usable core); videos run one at a time on every core.")] = None,
    cluster: Annotated[Optional[str], typer.Option("--cluster", help="Run each file as a task on the Dask scheduler at this address (tcp://host:8786), or local:N for N worker processes here.")] = None,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", help="Record of every input (JSON Lines); running again skips the files it lists as done. Default for several inputs: veil-manifest.jsonl in --output-dir, else beside the first output.")] = None,
) -> None:
    """Find every face in photos and videos and hide it irreversibly; strip identifying metadata."""
    started = time.monotonic()
    settings = RenderSettings(mode=mode.value, color=parse_color(color), blocks=blocks)
    if output is not None and output_dir is not None:
        raise typer.BadParameter("use either -o or --output-dir, not both")
    paths = paths or []
    if not paths and plan_file is None:
        raise typer.BadParameter("name the photos, videos or folders to redact (or a --plan)")
    job = Job(
        profile=PROFILES["accurate" if accurate else "fast"], shape=shape.value, output=output, output_dir=output_dir,
        dry_run=dry_run, quiet=quiet or as_json, plan_file=plan_file,
        video=VideoOptions(start, end, only_range, Encoding(crf=crf, codec=codec, keep_subtitles=keep_subtitles)),
    )
    if plan_file is not None:
        plan = load_plan(plan_file, settings, given_options(ctx))
        inputs = [(Path(m.path), Path(m.path).parent) for m in plan.media] if not paths else collect_inputs(paths)
    else:
        plan = Plan(render=settings, veil_version=__version__, detection={**detection_record(job.profile), "shape": job.shape})
        inputs = collect_inputs(paths)
    if output is not None and len(inputs) != 1:
        raise typer.BadParameter("-o names one output file; use --output-dir for several inputs")
    if not inputs:
        err.print("veil: no photos or videos found in " + ", ".join(map(str, paths)))
        raise typer.Exit(2)

    claims = OutputClaims(source for source, _ in inputs)
    if manifest is None and not dry_run and len(inputs) > 1:  # one file has nothing to resume
        manifest = default_manifest(output, output_dir, inputs[0][0])
    try:
        if manifest is not None:
            claims.claim(manifest, "the manifest")
        if save_plan is not None:
            claims.claim(save_plan, "the plan")
        if report is not None:
            for path in report_paths(report):
                claims.claim(path, "the report")
    except OutputError as error:
        raise typer.BadParameter(str(error))
    per_file = FileSettings(job.profile, job.shape, plan.render, job.video.encoding, job.video.start, job.video.end,
                            job.video.only_range, plan_sha256=file_sha256(plan_file) if plan_file else None,
                            show_progress=not job.quiet)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, disable=job.quiet or len(inputs) < 2, transient=True) as progress:
        task = progress.add_task("redacting", total=len(inputs))

        def on_result(result: FileResult) -> None:
            if result.error:
                err.print(f"veil: {result.source}: {result.error}")
            progress.advance(task)

        try:
            outcomes = redact_inputs(inputs, per_file, claims, Workers(jobs or usable_cores(), cluster), manifest,
                                     on_result, output=job.output, output_dir=job.output_dir, dry_run=job.dry_run,
                                     plan=plan if job.plan_file else None, plan_file=job.plan_file)
        except KeyboardInterrupt:
            err.print("veil: interrupted; no partial output was left")
            raise typer.Exit(130)
        except BatchError as error:
            err.print(f"veil: {error}")
            raise typer.Exit(2)
    if job.plan_file is None:
        plan.media.extend(o.media for o in outcomes if o.media)

    if save_plan is not None:
        plan.save(save_plan)
    if report is not None:
        write_report(plan, {str(o.source): str(o.output) for o in outcomes if o.output}, report)
    print_summary(outcomes, time.monotonic() - started, quiet, as_json)
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


def given_options(ctx: typer.Context) -> set[str]:
    """Render options typed on the command line (by name: typer bundles its own click)."""
    return {name for name in ("mode", "color", "blocks")
            if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"}


def load_plan(plan_file: Path, settings: RenderSettings, given: set[str]) -> Plan:
    """A saved plan to re-render: its own render settings, unless options override them."""
    try:
        plan = Plan.load(plan_file)
    except PlanError as error:
        err.print(f"veil: {plan_file}: {error}")
        raise typer.Exit(2)
    plan.render = RenderSettings(
        mode=settings.mode if "mode" in given else plan.render.mode,
        color=settings.color if "color" in given else plan.render.color,
        blocks=settings.blocks if "blocks" in given else plan.render.blocks,
    )
    return plan


@dataclass
class VideoOptions:
    start: float | None
    end: float | None
    only_range: bool
    encoding: Encoding


@dataclass
class Job:
    """What the command line asks of every file."""

    profile: DetectionProfile
    shape: str
    output: Path | None
    output_dir: Path | None
    dry_run: bool
    quiet: bool
    plan_file: Path | None
    video: VideoOptions


def print_summary(outcomes: list[FileResult], seconds: float, quiet: bool, as_json: bool) -> None:
    failed = [o for o in outcomes if o.error]
    skipped = sum(o.status == "skipped" for o in outcomes)
    if as_json:
        print(json.dumps({
            "files": len(outcomes), "failed": len(failed), "skipped": skipped, "faces": sum(o.faces for o in outcomes),
            "seconds": round(seconds, 2),
            "results": [{"input": str(o.source), "output": str(o.output) if o.output else None,
                         "faces": o.faces, "error": o.error, "notes": o.notes} for o in outcomes],
        }, indent=1))
        return
    for o in outcomes:
        for note in o.notes:
            err.print(f"veil: {o.source}: {note}")
    if not quiet or failed:
        faces = sum(o.faces for o in outcomes)
        done_before = f", {skipped} already done (skipped)" if skipped else ""
        err.print(f"{len(outcomes)} file(s), {faces} region(s) hidden, {len(failed)} failed{done_before}, {seconds:.1f} s")
    for o in failed:
        if len(outcomes) > 1:
            err.print(f"  failed: {o.source}: {o.error}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "review":
        from veil.review.cli import review_app

        sys.argv.pop(1)
        review_app(prog_name="veil review")
    else:
        app(prog_name="veil")
