"""Procedural street scenes: a seeded, learnable stand-in for CamVid.

Every image is drawn with numpy from its own random stream, seeded by
`(seed, split, index)`, so the same triple always gives the same image whatever
the number of images requested, and the "val" split never repeats a "train" image.

A scene has sky above a horizon, buildings with window grids along it, a sidewalk
band and a road below (with lane marks), and objects in front: trees, a fence,
poles (some carrying signs), cars, pedestrians and bicyclists. Classes are told
apart by texture and shape as well as colour: colour ranges deliberately overlap
(overcast sky vs. grey buildings and poles, tan buildings vs. sidewalks, car paint
vs. clothing vs. signs, dark windows vs. tyres), so a per-pixel colour classifier
is clearly worse than a small conv net that sees context.

With fewer than 11 classes the scenes contain only the classes named by
`synthetic_info(num_classes)`; a missing Sidewalk is drawn as Road, and other
missing classes are simply not drawn.
"""

import zlib

import numpy as np

from tf_nas_seg.data.dataset_info import CAMVID_CLASS_NAMES, DatasetInfo, synthetic_info
from tf_nas_seg.data.segmentation_source import SegmentationSource
from tf_nas_seg.errors import ConfigError

# CamVid-11 ids, used while drawing; the output is renumbered to the chosen subset.
SKY, BUILDING, POLE, ROAD, SIDEWALK, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)

_PAINTS = np.array([(200, 30, 30), (30, 60, 190), (235, 235, 235), (160, 160, 165),
                    (25, 25, 30), (230, 190, 30), (40, 140, 60), (120, 40, 140)],
                   dtype=np.float32)
_SKIN = np.array([(225, 180, 150), (170, 120, 90), (110, 75, 55)], dtype=np.float32)
_WALLS = np.array([(180, 150, 110), (150, 70, 55), (140, 140, 145), (200, 190, 165),
                   (110, 100, 95)], dtype=np.float32)


class SyntheticStreetScenes:
    """Draws seeded street scenes of a fixed size and class subset.

    Attributes:
        info: The `DatasetInfo` of the chosen class subset.
        height: Image height in pixels.
        width: Image width in pixels.
        seed: Base seed of every image's random stream.
    """

    def __init__(self, height: int = 64, width: int = 128, num_classes: int = 11,
                 seed: int = 0):
        """Sets up the generator.

        Args:
            height: Image height; at least 32 (objects are a few pixels wide at 64).
            width: Image width; at least 32.
            num_classes: Number of classes, 3..11 (see `synthetic_info`).
            seed: Base seed.

        Raises:
            ValueError: For sizes below 32 or an unsupported class count.
        """
        if height < 32 or width < 32:
            raise ConfigError(f"synthetic scenes need at least 32x32 pixels, got "
                             f"{height}x{width}")
        self.info: DatasetInfo = synthetic_info(num_classes)
        self.height = height
        self.width = width
        self.seed = seed
        names = set(self.info.class_names)
        self._enabled = frozenset(i for i, n in enumerate(CAMVID_CLASS_NAMES) if n in names)
        # CamVid id -> subset train id; unused entries are never drawn.
        self._to_train = np.full(256, self.info.ignore_label, np.uint8)
        for train_id, name in enumerate(self.info.class_names):
            self._to_train[CAMVID_CLASS_NAMES.index(name)] = train_id
        self._yy, self._xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def generate(self, index: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Draws one scene.

        Args:
            index: Image index within the split; any non-negative integer.
            split: Name of the split; different names give disjoint streams.

        Returns:
            uint8 image `[height, width, 3]` and uint8 train-id label `[height, width]`.
        """
        rng = np.random.default_rng([self.seed, zlib.crc32(split.encode()), index])
        canvas = _Canvas(self, rng)
        canvas.draw_scene()
        return canvas.finish()

    def source(self, num_images: int, split: str = "train",
               first_index: int = 0) -> SegmentationSource:
        """Draws images `first_index .. first_index+num_images-1` into a source.

        Args:
            num_images: Number of images, at least 1.
            split: Name of the split (e.g. "train", "val").
            first_index: Index of the first image.

        Returns:
            An in-memory `SegmentationSource` without groups; names are
            `"{split}_{index:06d}"`.
        """
        if num_images < 1:
            raise ConfigError(f"num_images must be >= 1, got {num_images}")
        indices = range(first_index, first_index + num_images)
        images = np.empty((num_images, self.height, self.width, 3), np.uint8)
        labels = np.empty((num_images, self.height, self.width), np.uint8)
        for slot, index in enumerate(indices):
            images[slot], labels[slot] = self.generate(index, split)
        return SegmentationSource.from_arrays(self.info, images, labels,
                                              names=[f"{split}_{i:06d}" for i in indices])


def make_street_scenes(num_images: int = 256, height: int = 64, width: int = 128,
                       num_classes: int = 11, seed: int = 0,
                       split: str = "train") -> SegmentationSource:
    """Draws an in-memory split of synthetic street scenes.

    Image `i` of `(seed, split)` is the same for every `num_images > i`, so a
    larger request extends a smaller one. Use another `split` (or `seed`) for
    held-out images.

    Args:
        num_images: Number of images.
        height: Image height (>= 32).
        width: Image width (>= 32).
        num_classes: 3..11; which classes are used is documented in
            `synthetic_info`.
        seed: Base seed.
        split: Split name mixed into every image's seed.

    Returns:
        The `SegmentationSource`.
    """
    generator = SyntheticStreetScenes(height, width, num_classes, seed)
    return generator.source(num_images, split)


class _Canvas:
    """One scene being drawn (painter's algorithm, back to front)."""

    def __init__(self, scenes: SyntheticStreetScenes, rng: np.random.Generator):
        self.rng = rng
        self.h, self.w = scenes.height, scenes.width
        self.u = self.h / 64.0  # object sizes below are tuned at 64 pixels height
        self.enabled = scenes._enabled
        self.to_train = scenes._to_train
        self.yy, self.xx = scenes._yy, scenes._xx
        self.image = np.zeros((self.h, self.w, 3), np.float32)
        self.label = np.zeros((self.h, self.w), np.uint8)
        # Shared noise fields: fine grain and coarse blotches (4x4 cells).
        self.grain = rng.standard_normal((self.h, self.w)).astype(np.float32)
        coarse = rng.standard_normal((self.h // 4 + 2, self.w // 4 + 2)).astype(np.float32)
        self.blotch = np.repeat(np.repeat(coarse, 4, 0), 4, 1)[:self.h, :self.w]

    # -- primitives --------------------------------------------------------------

    def _box(self, y0, y1, x0, x1):
        y0, y1 = max(0, int(round(y0))), min(self.h, int(round(y1)))
        x0, x1 = max(0, int(round(x0))), min(self.w, int(round(x1)))
        return (slice(y0, y1), slice(x0, x1)) if y0 < y1 and x0 < x1 else None

    def paint(self, box, mask, class_id, colour):
        """Paints `colour` (RGB or [h, w, 3]) where `mask` holds inside `box`."""
        if box is None or class_id not in self.enabled:
            return
        if mask is None:
            mask = np.ones((box[0].stop - box[0].start, box[1].stop - box[1].start), bool)
        colour = np.broadcast_to(np.asarray(colour, np.float32), mask.shape + (3,))
        self.image[box][mask] = colour[mask]
        self.label[box][mask] = class_id

    def rect(self, y0, y1, x0, x1, class_id, colour):
        self.paint(self._box(y0, y1, x0, x1), None, class_id, colour)

    def ellipse(self, cy, cx, ry, rx, class_id, colour, ring=None):
        """Fills an ellipse, or with `ring` only where (normalised radius)^2 >= ring."""
        box = self._box(cy - ry, cy + ry + 1, cx - rx, cx + rx + 1)
        if box is None:
            return
        d = ((self.yy[box] - cy) / ry) ** 2 + ((self.xx[box] - cx) / rx) ** 2
        mask = d <= 1.0 if ring is None else (d <= 1.0) & (d >= ring)
        self.paint(box, mask, class_id, colour)

    def textured(self, box, base, grain=0.0, blotch=0.0):
        """Base colour plus fine and coarse noise over `box`."""
        out = np.broadcast_to(np.asarray(base, np.float32), self.image[box].shape).copy()
        if grain:
            out += grain * self.grain[box][..., None]
        if blotch:
            out += blotch * self.blotch[box][..., None] * np.array([0.6, 1.0, 0.4])
        return out

    def uniform(self, low, high):
        return float(self.rng.uniform(low, high))

    def jitter(self, colour, amount=12.0):
        return np.asarray(colour, np.float32) + self.rng.uniform(-amount, amount, 3)

    # -- scene -------------------------------------------------------------------

    def draw_scene(self):
        h, w, u, rng = self.h, self.w, self.u, self.rng
        self.horizon = self.uniform(0.42, 0.55) * h
        self.curb = self.horizon + self.uniform(0.10, 0.18) * h
        self.draw_sky()
        self.draw_buildings()
        self.draw_ground()
        for _ in range(rng.integers(0, 3)):
            self.draw_tree(self.uniform(0, w))
        if rng.random() < 0.6:
            self.draw_fence()
        for _ in range(rng.integers(0, 3)):
            self.draw_pole(self.uniform(2 * u, w - 2 * u), with_sign=rng.random() < 0.6)
        # Near objects are drawn last so they occlude far ones.
        objects = []
        for _ in range(rng.integers(0, 4)):
            objects.append((self.uniform(self.curb + 4 * u, h + 6 * u), self.draw_car))
        for _ in range(rng.integers(0, 3)):
            objects.append((self.uniform(self.horizon + 4 * u, self.curb + 4 * u),
                            self.draw_pedestrian))
        for _ in range(rng.integers(0, 3)):
            objects.append((self.uniform(self.curb + 2 * u, h), self.draw_bicyclist))
        for foot, draw in sorted(objects, key=lambda item: item[0]):
            draw(foot, self.uniform(-0.05 * w, 1.05 * w))

    def draw_sky(self):
        box = self._box(0, self.h, 0, self.w)
        if self.rng.random() < 0.3:  # overcast: grey, close to walls, poles, road
            top = self.jitter((150, 152, 158), 15)
            bottom = top + 25
        else:
            top = self.jitter((70, 130, 210), 20)
            bottom = self.jitter((170, 200, 235), 15)
        t = np.clip(self.yy[box] / max(self.horizon, 1.0), 0, 1)[..., None]
        self.paint(box, None, SKY, top * (1 - t) + bottom * t + 2.0 * self.grain[box][..., None])

    def draw_buildings(self):
        h, w, u = self.h, self.w, self.u
        x = self.uniform(-0.1, 0.05) * w
        while x < w:
            width = self.uniform(0.14, 0.32) * w
            if self.rng.random() < 0.2:
                x += self.uniform(0.04, 0.1) * w  # gap: sky or trees show through
                continue
            top = self.uniform(0.04, 0.3) * h
            box = self._box(top, self.horizon + 1, x, x + width)
            if box is not None:
                wall = self.textured(box, self.jitter(_WALLS[self.rng.integers(len(_WALLS))]),
                                     grain=4.0)
                # Window grid: a periodic pattern only buildings have.
                px, py = self.uniform(5, 8) * u, self.uniform(6, 9) * u
                ox, oy = self.uniform(0, px), self.uniform(0, py)
                yy, xx = self.yy[box] - top - oy, self.xx[box] - x - ox
                window = ((xx % px) < 0.55 * px) & ((yy % py) < 0.5 * py) & (yy > 0)
                wall[window] = self.jitter((45, 55, 75), 10)
                self.paint(box, None, BUILDING, wall)
            x += width

    def draw_ground(self):
        h, w, u = self.h, self.w, self.u
        box = self._box(self.horizon, h, 0, w)
        yy, xx = self.yy[box], self.xx[box]
        slope = self.uniform(-0.12, 0.12)
        curb = self.curb + slope * (xx - w / 2)
        # Sidewalk: light paving with a tile grid.
        tile = self.uniform(4, 6) * u
        paving = self.textured(box, self.jitter((175, 165, 150), 20), grain=3.0)
        grid = ((xx % tile) < 1) | (((yy - self.horizon) % (tile * 0.6)) < 1)
        paving[grid] -= 40
        sidewalk = yy < curb
        self.paint(box, sidewalk, SIDEWALK if SIDEWALK in self.enabled else ROAD, paving)
        # Road: dark grainy asphalt with dashed lane marks.
        asphalt = self.textured(box, self.jitter((85, 85, 90), 12), grain=9.0)
        lane_y = self.curb + self.uniform(0.35, 0.6) * (h - self.curb)
        dash = self.uniform(8, 12) * u
        marks = (np.abs(yy - lane_y) < 0.8 * u) & (((xx + self.uniform(0, dash)) % dash) < dash / 2)
        asphalt[marks] = self.jitter((225, 225, 215), 10)
        self.paint(box, ~sidewalk, ROAD, asphalt)

    def draw_tree(self, cx):
        h, u = self.h, self.u
        cy = self.horizon - self.uniform(0.1, 0.25) * h
        ry, rx = self.uniform(0.12, 0.2) * h, self.uniform(0.1, 0.18) * h
        trunk_w = 1.6 * u
        self.rect(cy, self.horizon + self.uniform(0.02, 0.08) * h, cx - trunk_w, cx + trunk_w,
                  TREE, self.jitter((95, 65, 40), 10))
        box = self._box(cy - ry, cy + ry + 1, cx - rx, cx + rx + 1)
        if box is not None:
            leaves = self.textured(box, self.jitter((60, 120, 45), 15), grain=10.0, blotch=30.0)
            d = ((self.yy[box] - cy) / ry) ** 2 + ((self.xx[box] - cx) / rx) ** 2
            # A ragged outline: the blotch field perturbs the ellipse edge.
            self.paint(box, d + 0.25 * self.blotch[box] <= 1.0, TREE, leaves)

    def draw_fence(self):
        w, u = self.w, self.u
        x0 = self.uniform(-0.1, 0.7) * w
        x1 = x0 + self.uniform(0.25, 0.5) * w
        bottom = self.horizon + self.uniform(0.3, 0.7) * (self.curb - self.horizon)
        top = bottom - self.uniform(7, 10) * u
        box = self._box(top, bottom, x0, x1)
        if box is None:
            return
        wood = self.jitter((150, 110, 80) if self.rng.random() < 0.6 else (150, 150, 150), 15)
        panel = self.textured(box, wood, grain=3.0)
        slat = self.uniform(2.5, 3.5) * u
        panel[(self.xx[box] % slat) < slat / 2] -= 35  # vertical slats
        rails = (np.abs(self.yy[box] - top - 1.5 * u) < 0.8 * u) | (
            np.abs(self.yy[box] - bottom + 2.0 * u) < 0.8 * u)
        panel[rails] += 30
        self.paint(box, None, FENCE, panel)

    def draw_pole(self, x, with_sign):
        h, u = self.h, self.u
        bottom = self.horizon + self.uniform(0.2, 0.9) * (self.curb - self.horizon)
        top = self.uniform(0.08, 0.3) * h
        half = self.uniform(2.0, 2.6) * u
        box = self._box(top, bottom, x - half, x + half)
        if box is not None:
            metal = self.jitter((130, 130, 135), 20)
            # A lit left edge: metal poles read as cylinders.
            shade = 1.0 + 0.25 * ((self.xx[box] - x) < 0)[..., None]
            self.paint(box, None, POLE, metal * shade + 2.0 * self.grain[box][..., None])
        if with_sign:
            self.draw_sign(top, x)

    def draw_sign(self, cy, cx):
        u = self.u
        r = self.uniform(3.5, 5.0) * u
        colour = _PAINTS[self.rng.choice([0, 1, 5])] + self.rng.uniform(-10, 10, 3)
        box = self._box(cy - r, cy + r + 1, cx - r, cx + r + 1)
        if box is None:
            return
        dy, dx = self.yy[box] - cy, self.xx[box] - cx
        shape = self.rng.integers(3)
        if shape == 0:  # round
            dist = np.sqrt(dy ** 2 + dx ** 2) / r
        elif shape == 1:  # square
            dist = np.maximum(np.abs(dy), np.abs(dx)) / r
        else:  # triangle, point up
            # Edges through the apex (0, -r) and base corners (+-r, r); scaling
            # `dist` shrinks the triangle about its centre, as for the others.
            dist = np.maximum((2 * np.abs(dx) - dy) / r, dy / r)
        face = np.broadcast_to(colour, dist.shape + (3,)).copy()
        face[dist > 0.72] = (245, 245, 245)  # white rim
        face[dist < 0.3] = (245, 245, 245)  # white symbol
        self.paint(box, dist <= 1.0, SIGN, face)

    def draw_car(self, foot, cx):
        u = self.u
        scale = 0.6 + 0.4 * (foot - self.horizon) / max(self.h - self.horizon, 1.0)
        length = self.uniform(24, 34) * u * scale
        height = self.uniform(0.38, 0.48) * length
        x0, x1 = cx - length / 2, cx + length / 2
        paint = _PAINTS[self.rng.integers(len(_PAINTS))] + self.rng.uniform(-12, 12, 3)
        body_top = foot - 0.55 * height
        self.rect(body_top, foot - 0.12 * height, x0, x1, CAR, paint)
        cab = (x0 + 0.2 * length, x1 - 0.18 * length)
        self.rect(foot - height, body_top + 1, cab[0], cab[1], CAR, paint)
        glass = self.jitter((50, 60, 80), 10)
        self.rect(foot - 0.9 * height, body_top, cab[0] + 1.5 * u, (cab[0] + cab[1]) / 2 - 0.5 * u,
                  CAR, glass)
        self.rect(foot - 0.9 * height, body_top, (cab[0] + cab[1]) / 2 + 0.5 * u, cab[1] - 1.5 * u,
                  CAR, glass)
        wheel = 0.17 * length
        for wx in (x0 + 0.22 * length, x1 - 0.22 * length):
            self.ellipse(foot - wheel * 0.8, wx, wheel * 0.8, wheel * 0.8, CAR, (25, 25, 28))
        self.rect(foot - 0.4 * height, foot - 0.3 * height, x0, x0 + 1.5 * u, CAR,
                  (240, 200, 80))  # a lamp: a small bright patch that still belongs to the car

    def _person(self, foot, cx, height, class_id):
        u = self.u
        width = 0.32 * height
        head = 0.11 * height
        shirt = _PAINTS[self.rng.integers(len(_PAINTS))] + self.rng.uniform(-12, 12, 3)
        trousers = self.jitter((50, 50, 70), 15)
        hip = foot - 0.45 * height
        self.rect(hip, foot, cx - width / 2, cx - 0.5 * u, class_id, trousers)  # legs
        self.rect(hip, foot, cx + 0.5 * u, cx + width / 2, class_id, trousers)
        self.rect(foot - 0.8 * height, hip + 1, cx - width / 2 - 0.5 * u, cx + width / 2 + 0.5 * u,
                  class_id, shirt)
        self.ellipse(foot - 0.8 * height - head, cx, head * 1.1, head, class_id,
                     _SKIN[self.rng.integers(len(_SKIN))])

    def draw_pedestrian(self, foot, cx):
        scale = 0.8 + 0.4 * (foot - self.horizon) / max(self.h - self.horizon, 1.0)
        self._person(foot, cx, self.uniform(20, 25) * self.u * scale, PEDESTRIAN)

    def draw_bicyclist(self, foot, cx):
        u = self.u
        scale = 0.7 + 0.4 * (foot - self.horizon) / max(self.h - self.horizon, 1.0)
        wheel = self.uniform(5.5, 6.5) * u * scale
        gap = 1.5 * wheel
        frame = _PAINTS[self.rng.integers(len(_PAINTS))]
        for wx in (cx - gap, cx + gap):
            self.ellipse(foot - wheel, wx, wheel, wheel, BICYCLIST, (30, 30, 30), ring=0.3)
        self.rect(foot - 1.4 * wheel, foot - wheel + 0.5 * u, cx - gap, cx + gap, BICYCLIST, frame)
        # The rider sits between the wheels, seated lower than a standing person.
        self._person(foot - 1.2 * wheel, cx, 2.6 * wheel, BICYCLIST)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        # Per-image exposure and sensor noise, so absolute colour is a weaker cue.
        gain = self.uniform(0.8, 1.15)
        image = self.image * gain + 3.0 * self.rng.standard_normal(self.image.shape)
        return (np.clip(image, 0, 255).astype(np.uint8), self.to_train[self.label])
