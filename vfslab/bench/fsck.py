"""`vfslab bench fsck`: the image fuzz at scale (vfslab/fs/fsck_fuzz.py). N seeded images, each
a populated file system with 1 to 40 of its metadata blocks' bytes or words overwritten, each
repaired with `fsck -y` and then rechecked, mounted and given new files. It prints how many
ended clean, repaired and unrepairable, and every defect (an exception, a run past its time
limit, a repaired image that the recheck, the mount or the new files find corrupt), with the
seed that reproduces it. The peer is fsck of the unmutated image, measured in the same run:
the ratio is what repairing costs against checking a clean image. Exit 1 on any defect."""

from __future__ import annotations

import json
import time

import click


@click.command()
@click.option("--images", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="the first image's seed")
@click.option("--mutations", type=click.IntRange(1, 10_000), default=40, show_default=True,
              help="at most this many mutations an image")
@click.option("--time-limit", type=click.FloatRange(0.1, 3600), default=10.0,
              show_default=True, help="seconds fsck -y may take on one image")
@click.option("--json", "as_json", is_flag=True)
def fsck(images: int, seed: int, mutations: int, time_limit: float, as_json: bool) -> None:
    """Seeded metadata fuzz of fsck -y: clean / repaired / unrepairable, and any defect."""
    from vfslab.commands.progress import progress, wanted
    from vfslab.fs.fsck import fsck_image
    from vfslab.fs.fsck_fuzz import BAD, NBLOCKS, OUTCOMES, fuzz_one, populated_image

    base = populated_image()
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        if fsck_image(dict(base), NBLOCKS):
            raise click.ClickException("the fuzz's own image is not clean: nothing to measure")
    clean_s = (time.perf_counter() - t0) / reps
    counts = dict.fromkeys(OUTCOMES, 0)
    defects = []
    fsck_s = 0.0
    t0 = time.perf_counter()
    with progress("fsck fuzz", images, wanted(as_json), unit="images") as bar:
        for i in range(images):
            o = fuzz_one(base, seed + i, mutations, time_limit)
            counts[o.outcome] += 1
            fsck_s += o.fsck_s
            if o.outcome in BAD:
                defects.append({"seed": o.seed, "outcome": o.outcome, "detail": o.detail,
                                "mutations": o.mutations})
            bar.update(i + 1)
    wall = time.perf_counter() - t0
    out = {"images": images, "seed": seed, "max_mutations": mutations, "counts": counts,
           "defects": defects, "wall_s": wall, "fsck_s_per_image": fsck_s / images,
           "clean_fsck_s": clean_s, "ratio": fsck_s / images / clean_s}
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(f"{images:,} images (seeds {seed} to {seed + images - 1}, 1 to {mutations} "
                   f"mutations each) in {wall:.1f} s:")
        for k in OUTCOMES:
            click.echo(f"  {k:<20} {counts[k]:>8,}{'   (a defect)' if k in BAD else ''}")
        for d in defects[:10]:
            click.echo(f"  DEFECT seed {d['seed']}: {d['outcome']}: {d['detail']}")
        click.echo(f"fsck -y of a mutated image {fsck_s / images * 1e3:.1f} ms against "
                   f"{clean_s * 1e3:.1f} ms to check the clean one ({out['ratio']:.2f}x)")
    if defects:
        raise SystemExit(1)
