"""The frame cache's figures (benchmarks/README.md, "The frame cache"), on the real videos of ../shared/realdata:

    decoders    each decoder on each file: does it decode it, and how fast (decord, PyAV, TorchCodec if installed)
    formats     bytes per clip and read time of each entry format, against decoding the source video
    throughput  the decode stage of a pass or an epoch (Ray Data, local cluster) over a decode-bound manifest:
                the real videos repeated to --rows rows, each row its own clip window; cache off against a warm
                cache, alternated A/B/A/B
    stages      a whole generation pass and a 3-epoch finetune over that manifest (the demo's seed model)

    python benchmarks/frame_cache.py --sections decoders formats throughput --rows 256
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vstar_ray.data import frame_cache as fc  # noqa: E402
from vstar_ray.data import video  # noqa: E402

REALDATA = Path(os.environ.get("VSTAR_REALDATA", ROOT.parent / "shared" / "realdata"))


def _timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def decoders(videos: list[Path], frames: int, size: int) -> None:
    candidates = {"decord": video.decode_with_decord, "pyav": video.decode_with_pyav}
    try:
        from torchcodec.decoders import VideoDecoder

        def torchcodec_decode(path, n, s, start, end):
            d = VideoDecoder(path)
            idx = video.sample_indices(d.metadata.num_frames, n).tolist()
            return video.resize_frames(d.get_frames_at(idx).data.permute(0, 2, 3, 1).numpy(), s)

        candidates["torchcodec"] = torchcodec_decode
    except Exception as e:  # noqa: BLE001  (not installed, or its FFmpeg libraries are missing)
        print(f"torchcodec: not usable here ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    print(f"\n| video | {' | '.join(candidates)} |\n|---|{'---|' * len(candidates)}")
    for path in videos:
        cells = []
        for name, fn in candidates.items():
            try:
                seconds, _ = _timed(lambda: fn(str(path), frames, size, None, None))
                cells.append(f"{seconds * 1000:,.0f} ms")
            except Exception as e:  # noqa: BLE001
                cells.append(f"fails ({type(e).__name__})")
        print(f"| {path.name} | {' | '.join(cells)} |")


def _jpeg420(frames: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    parts = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=quality)  # PIL's default: 4:2:0 chroma subsampling
        parts.append(len(buf.getvalue()).to_bytes(4, "little") + buf.getvalue())
    return b"".join(parts)


def formats(videos: list[Path], frames: int, size: int) -> None:
    """The cache's own entries (``fc.encode``/``fc.decode``: lz4 and JPEG q95 4:4:4) beside raw, zstd and PIL's
    default JPEG (q90, 4:2:0)."""
    names = ("raw", "lz4 (the cache's)", "zstd", "jpeg q90 4:2:0", "jpeg q95 4:4:4 (the cache's)")
    rows = {name: {"bytes": [], "read": [], "max": [], "mean": []} for name in names}
    source = []
    for path in videos:
        seconds, clip = _timed(lambda: video.decode_clip(str(path), frames, size))
        source.append(seconds)
        raw = np.ascontiguousarray(clip.frames)
        for name in names:
            if name == "raw":
                data, read = raw.tobytes(), lambda d: np.frombuffer(d, np.uint8).reshape(raw.shape)
            elif name == "zstd":
                codec = pa.Codec("zstd")
                data = codec.compress(raw.tobytes(), asbytes=True)
                read = lambda d, c=codec: np.frombuffer(c.decompress(d, decompressed_size=raw.nbytes, asbytes=True),
                                                        np.uint8).reshape(raw.shape)
            elif name == "jpeg q90 4:2:0":
                data, read = _jpeg420(raw, 90), lambda d: fc._unjpeg(d, list(raw.shape))
            else:
                data = fc.encode(clip, "lz4" if name.startswith("lz4") else "jpeg")
                read = lambda d: fc.decode(d).frames
            seconds_read, back = _timed(lambda: read(data), repeat=5)
            error = np.abs(back.astype(int) - raw.astype(int))
            rows[name]["bytes"].append(len(data))
            rows[name]["read"].append(seconds_read)
            rows[name]["max"].append(float(error.max()))
            rows[name]["mean"].append(float(error.mean()))
    print(f"\n{len(videos)} clips of {frames} frames at {size} px; decoding the source: median "
          f"{statistics.median(source) * 1000:,.1f} ms (max {max(source) * 1000:,.0f} ms)\n")
    print("| format | KiB per clip (median) | read ms (median) | read vs decode (median ratio) "
          "| pixel error max / mean |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        ratio = statistics.median(s / max(d, 1e-9) for s, d in zip(source, r["read"]))
        print(f"| {name} | {statistics.median(r['bytes']) / 1024:,.1f} | {statistics.median(r['read']) * 1000:,.2f} | "
              f"{ratio:,.0f}x faster | {max(r['max']):.0f} / {statistics.mean(r['mean']):.2f} |")


def throughput(videos: list[Path], frames: int, size: int, rows: int, rounds: int) -> None:
    import ray

    from vstar_ray.config import load_config
    from vstar_ray.data.decode import decoded, read_manifest
    from vstar_ray.data.manifest import write_manifest
    from vstar_ray.resources import init_ray

    work = Path(tempfile.mkdtemp(prefix="frame_cache_bench_"))
    try:
        manifest = work / "manifest.parquet"
        write_manifest([{"id": f"r{i:04d}", "video": str(videos[i % len(videos)]), "start": 0.001 * (i // len(videos)),
                         "labels": '{"class": "x"}', "verifiers": '{"class": "class"}', "question": "q?",
                         "source": "bench"} for i in range(rows)], manifest)
        init_ray(num_cpus=os.cpu_count(), include_dashboard=False)
        results = {"off": [], "warm cache": []}
        for setting, location in (("off", "off"), ("warm cache", str(work / "cache"))):
            cfg = load_config(None, [f"data.num_frames={frames}", f"data.frame_size={size}",
                                     f"data.frame_cache={location}", "data.decode_num_cpus=1"])
            if location != "off":  # fill it (the first pass of a run does this)
                start = time.perf_counter()
                n = sum(1 for _ in decoded(cfg, read_manifest(cfg, str(manifest)), "").iter_rows())
                print(f"filling the cache: {n} rows in {time.perf_counter() - start:.1f} s")
        for _ in range(rounds):
            for setting, location in (("off", "off"), ("warm cache", str(work / "cache"))):
                cfg = load_config(None, [f"data.num_frames={frames}", f"data.frame_size={size}",
                                         f"data.frame_cache={location}", "data.decode_num_cpus=1"])
                start = time.perf_counter()
                seen = [r["frames_from"] for r in decoded(cfg, read_manifest(cfg, str(manifest)), "").iter_rows()]
                seconds = time.perf_counter() - start
                assert len(seen) == rows and set(seen) == ({"file"} if location == "off" else {"cache"}), set(seen)
                results[setting].append(rows / seconds)
        print(f"\n{rows} rows ({len(videos)} real videos, each row its own clip window), {frames} frames at {size} px, "
              f"{os.cpu_count()} CPUs, {rounds} rounds alternated\n")
        print("| decode stage | rows/s (each round) | median |\n|---|---|---|")
        for setting, rates in results.items():
            print(f"| {setting} | {', '.join(f'{r:.1f}' for r in rates)} | {statistics.median(rates):.1f} |")
        print(f"\nratio: {statistics.median(results['warm cache']) / statistics.median(results['off']):.1f}x")
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stages(videos: list[Path], rows: int, rounds: int) -> None:
    """A generation pass (what cycle 2 runs) and a finetune of 3 epochs over the decode-bound manifest, with the
    demo's seed model at the demo's 56 px: cache off against a cache the first pass filled, alternated."""
    import pyarrow.parquet as pq

    from vstar_ray.config import load_config
    from vstar_ray.data.manifest import write_manifest
    from vstar_ray.demo.kit import ensure_kit
    from vstar_ray.generation.pipeline import run_pass
    from vstar_ray.resources import init_ray
    from vstar_ray.training.finetune import finetune

    kit = ensure_kit(os.path.expanduser(os.environ.get("VSTAR_DEMO_KIT", "~/.cache/vstar-ray/demo-kit")))
    source = pq.read_table(kit / "train.parquet").to_pylist()
    work = Path(tempfile.mkdtemp(prefix="frame_cache_stages_"))
    try:
        manifest = work / "manifest.parquet"
        write_manifest([{**source[i % len(source)], "id": f"r{i:04d}", "video": str(videos[i % len(videos)]),
                         "start": 0.001 * (i // len(videos)), "end": None} for i in range(rows)], manifest)
        init_ray(num_cpus=os.cpu_count(), include_dashboard=False)
        base = ["demo_kit=", f"model.path={kit}/seed", f"verify.thresholds={kit}/thresholds.yaml",
                "generate.max_new_tokens=32", "train_on=unfiltered", "train.epochs=3", "train.num_workers=1",
                "rationalize=false"]
        configs = {"off": load_config("configs/demo.yaml", base + ["data.frame_cache=off"]),
                   "cache": load_config("configs/demo.yaml", base + [f"data.frame_cache={work / 'cache'}"])}
        run_pass(configs["cache"], str(manifest), f"{kit}/seed", work / "fill", "train")  # what cycle 1 does
        figures: dict = {k: {"pass": [], "train": []} for k in configs}
        for r in range(rounds):
            for name, cfg in configs.items():
                summary = run_pass(cfg, str(manifest), f"{kit}/seed", work / f"pass_{name}_{r}", "train")
                figures[name]["pass"].append(rows / summary.seconds)
                trained = finetune(cfg, work / f"pass_{name}_{r}", str(manifest), f"{kit}/seed",
                                   work / f"ckpt_{name}_{r}", work / "ray_train", final_cycle=False, name=f"{name}_{r}")
                figures[name]["train"].append(trained.samples_per_s)
                print(f"{name} round {r}: pass {figures[name]['pass'][-1]:.1f} rows/s ({summary.frames}), "
                      f"finetune {trained.samples_per_s:.1f} samples/s (decoded {trained.decoded}, "
                      f"cache hits {trained.cache_hits})", flush=True)
        print(f"\n{rows} rows, the demo seed at 56 px, 3 epochs, {os.cpu_count()} CPUs, {rounds} rounds alternated\n")
        print("| stage | cache off | cache on | ratio |\n|---|---|---|---|")
        for stage, unit in (("pass", "rows/s"), ("train", "samples/s")):
            off, on = (statistics.median(figures[k][stage]) for k in ("off", "cache"))
            print(f"| {'a generation pass' if stage == 'pass' else 'a finetune, 3 epochs'} | {off:.1f} {unit} | "
                  f"{on:.1f} {unit} | {on / off:.1f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", default=["decoders", "formats", "throughput", "stages"],
                        choices=["decoders", "formats", "throughput", "stages"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    videos = sorted((REALDATA / "videos").iterdir())
    if "decoders" in args.sections:
        decoders(videos, args.frames, args.size)
    if "formats" in args.sections:
        formats(videos, args.frames, args.size)
        formats(videos, args.frames, 448)
    if "throughput" in args.sections:
        throughput(videos, args.frames, args.size, args.rows, args.rounds)
    if "stages" in args.sections:
        stages(videos, args.rows, args.rounds)
    print(f"\nfrom the cache: {fc.FORMATS}, JPEG quality {fc.JPEG_QUALITY}")


if __name__ == "__main__":
    main()
