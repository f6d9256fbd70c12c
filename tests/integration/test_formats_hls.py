"""HLS playlists and segment sniffing against what ffmpeg and PyAV really write (the rules
alone, against garbage: `unit/test_playlists.py`)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from mediahooks.media.formats import HEAD_BYTES, sniff
from mediahooks.media.hls import (
    Playlist,
    parse_playlist,
    render_playlist,
)
from support.mediakit import make_segments, write_media


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five seconds of H.264 + AAC with a keyframe a second, for ffmpeg to segment."""
    path = tmp_path_factory.mktemp("source") / "source.mp4"
    write_media(str(path), "mp4", seconds=5)
    return path


def ffmpeg_hls(source: Path, directory: Path, *options: str) -> Playlist:
    playlist = directory / "index.m3u8"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy", "-f", "hls"),
            *("-hls_time", "1", "-hls_list_size", "0", *options, str(playlist)),
        ],
        check=True,
    )
    return parse_playlist(playlist.read_text())


# --- playlists as ffmpeg writes them ---------------------------------------------------------


@pytest.mark.parametrize(
    ("segment_type", "suffix"), [("mpegts", ".ts"), ("fmp4", ".m4s")], ids=["ts", "fmp4"]
)
def test_ffmpeg_playlist_with_program_date_time(
    source: Path, tmp_path: Path, segment_type: str, suffix: str
) -> None:
    options = ["-hls_segment_type", segment_type, "-hls_flags", "program_date_time"]
    playlist = ffmpeg_hls(source, tmp_path, *options)

    assert [entry.uri for entry in playlist.entries] == [f"index{i}{suffix}" for i in range(5)]
    assert all(entry.duration == pytest.approx(1.0) for entry in playlist.entries)
    assert playlist.map_uri == ("init.mp4" if segment_type == "fmp4" else None)
    assert (playlist.media_sequence, playlist.target_duration, playlist.ended) == (0, 1.0, True)
    dates = [entry.program_date_time or 0 for entry in playlist.entries]
    # ffmpeg dates each segment by the durations before it: one second apart here.
    assert dates[0] > 1_700_000_000_000
    assert [later - earlier for earlier, later in itertools.pairwise(dates)] == [1000] * 4
    assert not any(entry.discontinuity for entry in playlist.entries)


@pytest.mark.parametrize("segment_type", ["mpegts", "fmp4"])
def test_ffmpeg_playlist_without_program_date_time(
    source: Path, tmp_path: Path, segment_type: str
) -> None:
    playlist = ffmpeg_hls(source, tmp_path, "-hls_segment_type", segment_type)
    assert len(playlist.entries) == 5
    assert all(entry.program_date_time is None for entry in playlist.entries)
    # Every file the playlist names is one ffmpeg wrote.
    names = [entry.uri for entry in playlist.entries] + [playlist.map_uri or "index.m3u8"]
    assert all((tmp_path / name).is_file() for name in names)


def test_ffmpeg_live_window(source: Path, tmp_path: Path) -> None:
    flags = "program_date_time+delete_segments+omit_endlist"
    playlist = ffmpeg_hls(source, tmp_path, "-hls_list_size", "3", "-hls_flags", flags)
    assert playlist.media_sequence == 2
    assert [entry.uri for entry in playlist.entries] == ["index2.ts", "index3.ts", "index4.ts"]
    assert not playlist.ended


def test_ffmpeg_discontinuity(source: Path, tmp_path: Path) -> None:
    ffmpeg_hls(source, tmp_path, "-hls_flags", "program_date_time")
    flags = "program_date_time+append_list+discont_start"
    playlist = ffmpeg_hls(source, tmp_path, "-hls_flags", flags)
    # The first run's five segments, then the second run's, each run opening on a discontinuity.
    expected = [True, False, False, False, False] * 2
    assert [entry.discontinuity for entry in playlist.entries] == expected


def test_segments_from_pyav_hls_muxer_round_trip(tmp_path: Path) -> None:
    segments = make_segments(tmp_path, 3)
    playlist = parse_playlist(Path(segments.playlist_path).read_text())
    assert parse_playlist(render_playlist(playlist)) == playlist


# --- sniffing segment bodies ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bodies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    ts = make_segments(tmp_path_factory.mktemp("ts"), 2)
    fmp4 = make_segments(tmp_path_factory.mktemp("fmp4"), 2, kind="fmp4")
    assert fmp4.init_path is not None
    return {
        "ts": Path(ts[0].path).read_bytes(),
        "init": Path(fmp4.init_path).read_bytes(),
        "fragment": Path(fmp4[0].path).read_bytes(),
    }


@pytest.mark.parametrize("kind", ["ts", "init", "fragment"])
def test_sniff_real_segments(bodies: dict[str, bytes], kind: str) -> None:
    body = bodies[kind]
    assert sniff(body[:HEAD_BYTES]) == kind
    assert sniff(body) == kind  # more than the head changes nothing


def test_sniff_ffmpeg_cli_segments(source: Path, tmp_path: Path) -> None:
    (tmp_path / "ts").mkdir()
    (tmp_path / "fmp4").mkdir()
    ffmpeg_hls(source, tmp_path / "ts")
    ffmpeg_hls(source, tmp_path / "fmp4", "-hls_segment_type", "fmp4")
    assert sniff((tmp_path / "ts" / "index1.ts").read_bytes()[:HEAD_BYTES]) == "ts"
    assert sniff((tmp_path / "fmp4" / "init.mp4").read_bytes()[:HEAD_BYTES]) == "init"
    assert sniff((tmp_path / "fmp4" / "index1.m4s").read_bytes()[:HEAD_BYTES]) == "fragment"


def test_a_small_complete_init_segment(bodies: dict[str, bytes]) -> None:
    # An init segment is often shorter than HEAD_BYTES: then it is the whole body.
    init = bodies["init"]
    assert len(init) < HEAD_BYTES
    assert sniff(init) == "init"
    assert sniff(init[:-1]) is None  # its moov cut short


def test_a_plain_mp4_is_not_a_segment(source: Path) -> None:
    # `source.mp4` was written without faststart: ftyp, free, mdat, moov.
    assert sniff(source.read_bytes()[:HEAD_BYTES]) is None


def test_sniff_truncated_bodies(bodies: dict[str, bytes]) -> None:
    ts, fragment = bodies["ts"], bodies["fragment"]
    # Shorter than HEAD_BYTES means the whole body: it must end on a packet or box boundary.
    assert sniff(ts[:1000]) is None
    assert sniff(ts[:100]) is None
    assert sniff(ts[: 2 * 188]) is None  # fewer packets than a playable segment
    assert sniff(ts[: 5 * 188]) == "ts"
    assert sniff(fragment[:100]) is None
    assert sniff(fragment[:HEAD_BYTES]) == "fragment"  # a head: the rest may follow
