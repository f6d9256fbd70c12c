"""Cutting clips out of real HLS segments (PyAV-encoded H.264 + AAC, 1 s segments, a keyframe a
second) and probing them.
"""

from __future__ import annotations

import os
import pickle
import resource
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import pytest

from mediahooks.media.cutter import CutResult, Segment, cut
from mediahooks.media.probe import MediaError, probe
from support.mediakit import Segments, make_segments

SECOND = 1000
FPS = 30


@pytest.fixture(scope="module", params=["ts", "fmp4"])
def timeline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Segments:
    """40 s of 320x180 @ 30 fps in 1 s segments, as MPEG-TS or as fMP4 with an init segment."""
    return make_segments(tmp_path_factory.mktemp(request.param), 40, kind=request.param)


@pytest.fixture(scope="module")
def ts_timeline(tmp_path_factory: pytest.TempPathFactory) -> Segments:
    return make_segments(tmp_path_factory.mktemp("ts"), 12)


def at(timeline: Segments, seconds: float) -> int:
    return timeline[0].start_ms + round(seconds * SECOND)


def clip(timeline: Segments, out: Path, start: float, stop: float, **kwargs: str) -> CutResult:
    """Cut seconds `start`..`stop` of `timeline` (counted from its first segment)."""
    start_ms, stop_ms = at(timeline, start), at(timeline, stop)
    return cut(list(timeline), start_ms, stop_ms, str(out), timeline.init_path, **kwargs)


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, position = [], 0
    while position < len(data):
        size = int.from_bytes(data[position : position + 4], "big")
        boxes.append(data[position + 4 : position + 8].decode())
        if size == 1:
            size = int.from_bytes(data[position + 8 : position + 16], "big")
        position += size
    return boxes


def first_frame_number(path: Path) -> int:
    """Which frame of the synthesized source a clip opens on, modulo 256: mediakit paints the
    chroma of frame n at level (64 + n) & 0xFF.
    """
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    plane = frame.planes[1]
    rows = bytes(plane)
    samples = [rows[y * plane.line_size + x] for y in range(plane.height) for x in (0, 40, 80)]
    level = round(sum(samples) / len(samples))
    return (level - 64) % 256


def test_a_clip_of_seconds_10_to_25(timeline: Segments, tmp_path: Path) -> None:
    out, poster = tmp_path / "clip.mp4", tmp_path / "poster.jpg"
    result = clip(timeline, out, 10, 25, poster_path=str(poster))
    stills = [poster, tmp_path / "poster.1.jpg", tmp_path / "poster.2.jpg"]

    # 10 s falls on a keyframe: nothing to snap.
    assert result.start_ms == at(timeline, 10)
    duration = (result.stop_ms - result.start_ms) / SECOND
    assert 15.0 <= duration <= 15.0 + 1.0
    # Whole seconds, as the platform has it: a typed receiver never sees 15.0.
    assert result.metadata["duration"] == round(duration)
    assert first_frame_number(out) == 10 * FPS % 256

    with av.open(str(out)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 1
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.start_time == 0  # rebased: the keyframe is shown at 0
        assert audio.start_time is not None and audio.time_base is not None
        # Audio starts with the picture, within one AAC frame (1024 samples).
        assert 0 <= audio.start_time * audio.time_base < 1024 / 48000
    # The index is at the front, so playback starts before the download ends.
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")

    assert result.metadata == {
        "format": "mp4",
        "duration": round(duration),
        "sizes": {"mp4": out.stat().st_size, "thumbnails": sum(p.stat().st_size for p in stills)},
        "thumbnails": [],
        "tracks": [
            {
                "type": "video",
                "codec": "h264",
                "bitrate": result.metadata["tracks"][0]["bitrate"],
                "width": 320,
                "height": 180,
                "framerate": 30,
            },
            {
                "type": "audio",
                "codec": "aac",
                "bitrate": result.metadata["tracks"][1]["bitrate"],
                "channels": 2,
                "samplerate": 48000,
            },
        ],
    }
    assert 20_000 < result.metadata["tracks"][0]["bitrate"] < 2_000_000
    assert 64_000 < result.metadata["tracks"][1]["bitrate"] < 256_000

    # Stills along the clip: its first picture, then those a third and two thirds in (the
    # synthetic picture changes every frame, so stills of other places differ).
    assert len({still.read_bytes() for still in stills}) == 3
    for still in stills:
        jpeg = still.read_bytes()
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        with av.open(str(still)) as image:
            picture = next(image.decode(video=0))
        assert (picture.width, picture.height) == (320, 180)

    # no temporary left
    assert sorted(os.listdir(tmp_path)) == [
        "clip.mp4",
        "poster.1.jpg",
        "poster.2.jpg",
        "poster.jpg",
    ]


def test_a_start_between_keyframes_snaps_back(timeline: Segments, tmp_path: Path) -> None:
    result = clip(timeline, tmp_path / "clip.mp4", 12.6, 27.6)
    assert result.start_ms == at(timeline, 12)
    assert first_frame_number(tmp_path / "clip.mp4") == 12 * FPS % 256
    # It still ends where it was asked to, so it is longer by the snap.
    assert result.stop_ms - at(timeline, 27.6) in range(0, 200)
    assert 15.6 <= (result.stop_ms - result.start_ms) / SECOND <= 15.6 + 1.0


def test_only_the_segments_that_cover_the_range(timeline: Segments, tmp_path: Path) -> None:
    # What the worker passes: the segments from the one holding the start to the one holding
    # the stop. The first of them anchors the wall clock.
    part = Segments(timeline[20:31], timeline.init_path, timeline.playlist_path)
    result = clip(part, tmp_path / "clip.mp4", 0.5, 10.5)
    assert result.start_ms == at(timeline, 20)
    assert first_frame_number(tmp_path / "clip.mp4") == 20 * FPS % 256
    assert 10.5 <= (result.stop_ms - result.start_ms) / SECOND <= 11.5


def test_a_range_beyond_the_segments_is_cut_to_them(ts_timeline: Segments, tmp_path: Path) -> None:
    result = clip(ts_timeline, tmp_path / "clip.mp4", -5, 30)
    assert result.start_ms == ts_timeline[0].start_ms
    assert 11.9 <= (result.stop_ms - result.start_ms) / SECOND <= 12.2
    assert result.metadata["duration"] == 12


def test_a_range_after_the_segments(ts_timeline: Segments, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="starts after the end of the given segments"):
        clip(ts_timeline, tmp_path / "clip.mp4", 13, 25)
    assert os.listdir(tmp_path) == []


def test_an_empty_range(ts_timeline: Segments, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not after its start"):
        clip(ts_timeline, tmp_path / "clip.mp4", 5, 5)
    with pytest.raises(MediaError, match="no segments"):
        cut([], 0, 1000, str(tmp_path / "clip.mp4"))


def test_probe_a_segment(ts_timeline: Segments) -> None:
    # MPEG-TS states no bit rates: they are measured from the packets.
    metadata = probe(ts_timeline[3].path)
    assert metadata["format"] == "mpegts"
    assert metadata["sizes"] == {"mpegts": os.path.getsize(ts_timeline[3].path)}
    assert isinstance(metadata["duration"], int) and metadata["thumbnails"] == []
    assert [track["type"] for track in metadata["tracks"]] == ["video", "audio"]
    assert all(track["bitrate"] > 0 for track in metadata["tracks"])


def test_probe_garbage(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").write_bytes(b"not media at all" * 100)
    with pytest.raises(MediaError, match=r"x\.mp4 is not readable media"):
        probe(str(tmp_path / "x.mp4"))


# --- bad segments --------------------------------------------------------------------------


def broken_copy(timeline: Segments, directory: Path) -> Segments:
    """A private copy of a timeline's files, for a test to damage."""
    copied = []
    for segment in timeline:
        target = directory / Path(segment.path).name
        shutil.copyfile(segment.path, target)
        copied.append(Segment(str(target), segment.start_ms, segment.duration_ms))
    init = None
    if timeline.init_path:
        init = str(directory / "init.mp4")
        shutil.copyfile(timeline.init_path, init)
    return Segments(copied, init, timeline.playlist_path)


def assert_refused(segments: Segments, out: Path, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        clip(segments, out, 2, 10)
    assert not any(name.startswith((".clip", "clip")) for name in os.listdir(out.parent))


def test_a_missing_segment(timeline: Segments, tmp_path: Path) -> None:
    segments = broken_copy(timeline, tmp_path)
    name = Path(segments[5].path).name
    os.unlink(segments[5].path)
    assert_refused(segments, tmp_path / "clip.mp4", f"^segment {name} is missing$")


def test_an_empty_segment(timeline: Segments, tmp_path: Path) -> None:
    segments = broken_copy(timeline, tmp_path)
    Path(segments[3].path).write_bytes(b"")
    name = Path(segments[3].path).name
    assert_refused(segments, tmp_path / "clip.mp4", f"^segment {name} is empty$")


@pytest.mark.parametrize(
    "garbage",
    [os.urandom(50_000), b"<html><body>502 Bad Gateway</body></html>", b"\x47" * 100],
    ids=["random", "html", "truncated"],
)
def test_a_garbage_segment(timeline: Segments, tmp_path: Path, garbage: bytes) -> None:
    segments = broken_copy(timeline, tmp_path)
    Path(segments[7].path).write_bytes(garbage)
    name = Path(segments[7].path).name
    assert_refused(segments, tmp_path / "clip.mp4", f"^segment {name} is not readable media: ")


def test_a_missing_init_segment(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    fmp4 = make_segments(tmp_path_factory.mktemp("fmp4"), 3, kind="fmp4")
    assert fmp4.init_path is not None
    os.unlink(fmp4.init_path)
    assert_refused(fmp4, tmp_path / "clip.mp4", "^init segment init.mp4 is missing$")


def test_ts_segments_are_not_fragments(ts_timeline: Segments, tmp_path: Path) -> None:
    # An init path given with TS segments: the first segment is not what it should be.
    fragments = Segments(list(ts_timeline), ts_timeline[0].path, ts_timeline.playlist_path)
    assert_refused(fragments, tmp_path / "clip.mp4", "expected an fMP4 init segment, found MPEG")


def test_segments_that_do_not_follow_on(
    ts_timeline: Segments, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A second broadcast's segments after the first's: its timestamps start over.
    other = make_segments(tmp_path_factory.mktemp("other"), 3)
    joined = list(ts_timeline[:5]) + [
        Segment(s.path, ts_timeline[5].start_ms + s.start_ms - other[0].start_ms, s.duration_ms)
        for s in other
    ]
    with pytest.raises(MediaError, match=r"^segment index0\.ts does not follow on"):
        cut(joined, at(ts_timeline, 1), at(ts_timeline, 7), str(tmp_path / "clip.mp4"))
    assert os.listdir(tmp_path) == []


# --- in the media worker's process pool -----------------------------------------------------


def test_runs_in_a_process_pool(ts_timeline: Segments, tmp_path: Path) -> None:
    segments = list(ts_timeline)
    with ProcessPoolExecutor(max_workers=1) as pool:
        out = str(tmp_path / "clip.mp4")
        result = pool.submit(cut, segments, at(ts_timeline, 1), at(ts_timeline, 11), out).result()
        assert result.start_ms == at(ts_timeline, 1)
        assert pickle.loads(pickle.dumps(result)) == result
        missing = [*segments[:2], Segment(str(tmp_path / "gone.ts"), 0, 1000)]
        failed = pool.submit(cut, missing, at(ts_timeline, 0), at(ts_timeline, 2), out)
        with pytest.raises(MediaError, match=r"^segment gone\.ts is missing$"):
            failed.result()


def cut_with_few_files_allowed(
    segments: list[Segment], start_ms: int, stop_ms: int, out_path: str
) -> CutResult:
    """`cut` in a process that may open only a few more files than it already has."""
    open_now = len(os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 6, hard))
    return cut(segments, start_ms, stop_ms, out_path)


def test_segments_are_not_all_held_open(ts_timeline: Segments, tmp_path: Path) -> None:
    # A day's recording has tens of thousands of segments: more than a process may hold open.
    assert len(ts_timeline) > 6 + 2
    out = str(tmp_path / "clip.mp4")
    with ProcessPoolExecutor(max_workers=1) as pool:
        job = pool.submit(
            cut_with_few_files_allowed,
            list(ts_timeline),
            at(ts_timeline, 0),
            at(ts_timeline, 11),
            out,
        )
        assert job.result().start_ms == at(ts_timeline, 0)
