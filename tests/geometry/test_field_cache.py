"""Distance fields: progress and cancel while building, and the on-disk cache (hits give the
identical field; corrupt entries are dropped, never a crash; the folder stays bounded)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trimesh

from surgtwin.errors import LoadCancelled
from surgtwin.geometry.field_cache import FieldCache, default_cache, field_key
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.sdf import PROGRESS_TOTAL, StructureField
from surgtwin.imaging.volume import ImageGeometry

R = 8.0


@pytest.fixture(scope="module")
def ball():
    """A sphere of radius 8 mm on 0.6 x 0.6 x 1.5 mm voxels (thick slices: the fine band is
    built too), with its surface."""
    g = ImageGeometry((21, 41, 41), (0.6, 0.6, 1.5), (-12.0, -12.0, -15.0), np.eye(3))
    k, j, i = np.indices(g.shape)
    pts = g.index_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1))
    mask = (np.linalg.norm(pts, axis=1) <= R).reshape(g.shape)
    ico = trimesh.creation.icosphere(subdivisions=4, radius=R)
    return mask, g, Mesh(ico.vertices, ico.faces, name="ball")


@pytest.fixture(scope="module")
def field(ball):
    mask, g, mesh = ball
    return StructureField.from_mask(mask, g, surface=mesh, name="ball")


def _probe() -> np.ndarray:
    rng = np.random.default_rng(2)
    return rng.uniform(-14, 14, size=(4000, 3))


def test_progress_runs_to_the_total_and_the_field_is_the_same(ball, field):
    mask, g, mesh = ball
    seen: list[tuple[int, int]] = []
    built = StructureField.from_mask(
        mask, g, surface=mesh, progress=lambda d, t: seen.append((d, t))
    )
    done = [d for d, _t in seen]
    assert {t for _d, t in seen} == {PROGRESS_TOTAL}
    assert done == sorted(done) and done[-1] == PROGRESS_TOTAL and len(seen) > 5
    assert built.slab_factor == field.slab_factor == 3
    np.testing.assert_array_equal(built.sample(_probe())[0], field.sample(_probe())[0])
    # exact near the surface (the band); deep inside, from the voxel distance map
    assert built.sample(np.array([[R + 1.0, 0.0, 0.0]]))[0][0] == pytest.approx(1.0, abs=0.02)
    assert built.sample(np.array([[0.0, 0.0, 0.0]]))[0][0] == pytest.approx(-R, abs=0.5)


@pytest.mark.parametrize("after", [0, 3, 400])
def test_cancel_stops_the_build(ball, after):
    """Cancelled at once, inside the distance maps (ITK's progress events), or in the exact
    band (after 40 % of the progress)."""
    mask, g, mesh = ball
    seen: list[int] = []

    def cancel() -> bool:
        return (seen[-1] if seen else 0) >= after if after else True

    with pytest.raises(LoadCancelled, match="ball"):
        StructureField.from_mask(
            mask, g, surface=mesh, name="ball", progress=lambda d, t: seen.append(d), cancel=cancel
        )
    assert not seen or seen[-1] < PROGRESS_TOTAL


def test_arrays_round_trip_and_validation(field, ball):
    arrays = field.to_arrays()
    again = StructureField.from_arrays(arrays, ball[2])
    np.testing.assert_array_equal(again.sample(_probe())[0], field.sample(_probe())[0])
    assert again.exact_at(np.array([[R + 1.0, 0, 0]]))[0] == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError):
        StructureField.from_arrays({k: v for k, v in arrays.items() if k != "fine"})
    bad = dict(arrays, fine=arrays["fine"][:-1])
    with pytest.raises(ValueError, match="fine band"):
        StructureField.from_arrays(bad)


def test_cache_hit_gives_the_identical_field(tmp_path, field, ball):
    cache = FieldCache(tmp_path / "fields")
    key = field_key("ball", 1)
    assert cache.get(key) is None and cache.misses == 1
    path = cache.put(key, field)
    assert path is not None and path.is_file() and path.suffix == ".npz"
    hit = cache.get(key, ball[2])
    assert hit is not None and cache.hits == 1
    assert hit.name == "ball" and hit.margin_mm == field.margin_mm
    np.testing.assert_array_equal(hit.values, field.values)
    np.testing.assert_array_equal(hit.sample(_probe())[0], field.sample(_probe())[0])
    assert hit.exact_at(np.zeros((1, 3)))[0] == pytest.approx(-R, abs=0.01)
    # nothing is pickled
    with np.load(path, allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not a zip at all"),
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        lambda p: p.write_bytes(b""),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_corrupt_entries_are_dropped(tmp_path, field, damage):
    cache = FieldCache(tmp_path)
    key = field_key("ball", 2)
    path = cache.put(key, field)
    damage(path)
    assert cache.get(key) is None
    assert cache.dropped == 1 and not path.exists()
    assert cache.put(key, field) == path and cache.get(key) is not None  # rebuilt, kept again


def test_entry_under_another_key_and_pickled_arrays_are_refused(tmp_path, field):
    cache = FieldCache(tmp_path)
    a, b = field_key("a"), field_key("b")
    cache.put(a, field).rename(cache.path(b))
    assert cache.get(b) is None and cache.dropped == 1
    # an entry holding an object array (a pickle) is not loaded
    with open(cache.path(a), "wb") as fh:
        np.savez(fh, key=np.frombuffer(a.encode(), np.uint8), values=np.array([{}], dtype=object))
    assert cache.get(a) is None and cache.dropped == 2


def test_cache_stays_within_its_bound(tmp_path, field):
    size = sum(v.nbytes for v in field.to_arrays().values())
    cache = FieldCache(tmp_path, max_bytes=int(2.5 * size))
    paths = []
    for n in range(4):
        paths.append(cache.put(field_key("ball", n), field))
        # distinct, increasing times, whatever the file system's resolution
        t = 1_000_000 + 10 * n
        os.utime(paths[-1], (t, t))
    assert [p.exists() for p in paths] == [False, False, True, True]
    assert cache.nbytes <= cache.max_bytes
    # a field larger than the whole cache is not kept
    assert FieldCache(tmp_path / "small", max_bytes=size // 2).put(field_key("x"), field) is None


def test_unwritable_folder_means_no_caching(tmp_path, field):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    cache = FieldCache(blocker / "fields")
    assert cache.put(field_key("ball"), field) is None
    assert cache.get(field_key("ball")) is None


def test_default_cache_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SURGTWIN_CACHE_DIR", str(tmp_path))
    assert default_cache().folder == tmp_path / "fields"
    assert default_cache() is default_cache()
