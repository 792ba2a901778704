"""A procedural, SYNTHETIC shape benchmark built with trimesh.creation.

No labelled point-cloud benchmark (ModelNet, ShapeNet) ships offline, so this
module generates one deterministically: ten classes of primitives and simple
composites, each object with random proportions, a random pose (a rotation
about the up axis z and a small tilt), surface-sampled points, Gaussian noise
and, for some objects, a partial view (the points on one side of a random
plane removed, as a single depth scan would).  Every object is a pure function
of (class, index, seed), and the train/test split is fixed: the first
``train_per_class`` objects of each class are training objects.

The shapes are synthetic.  Numbers measured on them show that a pipeline
works and compare methods on one footing; they are not ModelNet numbers.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

__all__ = ["CLASSES", "make_object", "generate"]


def _rng_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _move(mesh, x: float = 0.0, y: float = 0.0, z: float = 0.0):
    mesh.apply_translation([x, y, z])
    return mesh


def _box(rng):
    import trimesh

    return [trimesh.creation.box(extents=rng.uniform(0.4, 2.0, size=3))]


def _sphere(rng):
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    m.apply_scale(rng.uniform(0.8, 1.2, size=3))  # a slightly squashed ball
    return [m]


def _cylinder(rng):
    import trimesh

    return [trimesh.creation.cylinder(radius=_rng_uniform(rng, 0.3, 0.8), height=_rng_uniform(rng, 0.8, 2.5),
                                      sections=24)]


def _cone(rng):
    import trimesh

    return [trimesh.creation.cone(radius=_rng_uniform(rng, 0.4, 1.0), height=_rng_uniform(rng, 0.8, 2.2), sections=24)]


def _torus(rng):
    import trimesh

    major = _rng_uniform(rng, 0.8, 1.2)
    return [trimesh.creation.torus(major, major * _rng_uniform(rng, 0.15, 0.45), major_sections=24, minor_sections=12)]


def _capsule(rng):
    import trimesh

    return [trimesh.creation.capsule(height=_rng_uniform(rng, 0.6, 2.0), radius=_rng_uniform(rng, 0.25, 0.6),
                                     count=[16, 16])]


def _table(rng):
    import trimesh

    w, d = _rng_uniform(rng, 1.0, 2.0), _rng_uniform(rng, 0.7, 1.4)
    h, t = _rng_uniform(rng, 0.6, 1.2), _rng_uniform(rng, 0.05, 0.15)
    r = _rng_uniform(rng, 0.04, 0.1)
    return [_move(trimesh.creation.box(extents=[w, d, t]), z=h)] + _legs(w, d, h, r)


def _legs(w: float, d: float, h: float, r: float) -> list:
    """Four cylinder legs of height h and radius r under the corners of a w × d top."""
    import trimesh

    return [_move(trimesh.creation.cylinder(radius=r, height=h, sections=10), sx * (w / 2 - 2 * r),
                  sy * (d / 2 - 2 * r), h / 2) for sx in (-1, 1) for sy in (-1, 1)]


def _chair(rng):
    import trimesh

    w = _rng_uniform(rng, 0.6, 1.0)
    h, t = _rng_uniform(rng, 0.5, 0.8), _rng_uniform(rng, 0.05, 0.12)
    back = _rng_uniform(rng, 0.5, 1.0)
    r = _rng_uniform(rng, 0.03, 0.07)
    parts = [_move(trimesh.creation.box(extents=[w, w, t]), z=h),
             _move(trimesh.creation.box(extents=[w, t, back]), y=w / 2, z=h + back / 2)]
    return parts + _legs(w, w, h, r)


def _lamp(rng):
    import trimesh

    base_r, pole = _rng_uniform(rng, 0.3, 0.6), _rng_uniform(rng, 1.0, 2.0)
    shade_r, shade_h = _rng_uniform(rng, 0.3, 0.7), _rng_uniform(rng, 0.3, 0.7)
    base = _move(trimesh.creation.cylinder(radius=base_r, height=0.08, sections=20), z=0.04)
    rod = _move(trimesh.creation.cylinder(radius=0.04, height=pole, sections=10), z=pole / 2)
    shade = _move(trimesh.creation.cone(radius=shade_r, height=shade_h, sections=20), z=pole - shade_h / 3)
    return [base, rod, shade]


def _mug(rng):
    import trimesh

    r, h = _rng_uniform(rng, 0.4, 0.7), _rng_uniform(rng, 0.8, 1.4)
    body = _move(trimesh.creation.cylinder(radius=r, height=h, sections=24), z=h / 2)
    hr = _rng_uniform(rng, 0.2, 0.35) * h
    handle = trimesh.creation.torus(hr, hr * 0.25, major_sections=16, minor_sections=8)
    handle.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))
    return [body, _move(handle, x=r, z=h / 2)]


#: class name -> builder(rng) returning a list of trimesh parts in a canonical pose (z up).
CLASSES: dict[str, Callable] = {
    "box": _box,
    "sphere": _sphere,
    "cylinder": _cylinder,
    "cone": _cone,
    "torus": _torus,
    "capsule": _capsule,
    "table": _table,
    "chair": _chair,
    "lamp": _lamp,
    "mug": _mug,
}


def _pose(rng: np.random.Generator, max_tilt: float) -> np.ndarray:
    """A rotation about z by a uniform angle, then a tilt of at most ``max_tilt`` radians about a random horizontal axis."""
    import trimesh

    yaw = trimesh.transformations.rotation_matrix(rng.uniform(0, 2 * math.pi), [0, 0, 1])
    phi = rng.uniform(0, 2 * math.pi)
    tilt = trimesh.transformations.rotation_matrix(rng.uniform(0, max_tilt), [math.cos(phi), math.sin(phi), 0])
    return tilt @ yaw


def make_object(cls: str, index: int, num_points: int = 1024, seed: int = 0, noise: float = 0.01,
                partial: float = 0.25, max_tilt: float = math.radians(15)) -> np.ndarray:
    """One object of class ``cls`` as a float32 array (num_points × 3), a pure function of its arguments.

    Points are sampled uniformly on the surface (area-weighted), posed, and
    perturbed with Gaussian noise of ``noise`` × the object's radius; with
    probability ``partial`` the object is a partial view: the points beyond a
    random plane are removed (25–45 % of them) and the rest re-sampled to
    ``num_points`` by repetition.
    """
    import trimesh

    c = list(CLASSES).index(cls)
    rng = np.random.default_rng([int(seed), c, int(index)])
    mesh = trimesh.util.concatenate(CLASSES[cls](rng))
    mesh.apply_transform(_pose(rng, max_tilt))
    pts, _ = trimesh.sample.sample_surface(mesh, 2 * num_points, seed=rng)
    pts = np.asarray(pts, dtype=np.float64)
    pts -= pts.mean(axis=0)
    radius = float(np.linalg.norm(pts, axis=1).max())
    pts += rng.normal(0.0, noise * radius, size=pts.shape)
    if rng.uniform() < partial:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        proj = pts @ direction
        keep = proj <= np.quantile(proj, 1.0 - rng.uniform(0.25, 0.45))
        pts = pts[keep]
    pick = rng.choice(len(pts), size=num_points, replace=len(pts) < num_points)
    return pts[pick].astype(np.float32)


def generate(train_per_class: int = 40, test_per_class: int = 20, num_points: int = 1024, seed: int = 0,
             noise: float = 0.01, partial: float = 0.25) -> tuple[list[str], list[np.ndarray], list[str], list[str]]:
    """(ids, items, labels, split) of the whole benchmark; ids are ``<class>/<index>``.

    Generated once per process and set of arguments (about a second for the
    default 600 objects); every call returns fresh copies of the arrays.
    """
    ids, items, labels, split = _generate(int(train_per_class), int(test_per_class), int(num_points), int(seed),
                                          float(noise), float(partial))
    return list(ids), [x.copy() for x in items], list(labels), list(split)


@functools.lru_cache(maxsize=4)
def _generate(train_per_class: int, test_per_class: int, num_points: int, seed: int, noise: float,
              partial: float) -> tuple[tuple, tuple, tuple, tuple]:
    ids, items, labels, split = [], [], [], []
    for cls in CLASSES:
        for i in range(train_per_class + test_per_class):
            ids.append(f"{cls}/{i:04d}")
            items.append(make_object(cls, i, num_points=num_points, seed=seed, noise=noise, partial=partial))
            labels.append(cls)
            split.append("train" if i < train_per_class else "test")
    return tuple(ids), tuple(items), tuple(labels), tuple(split)
