"""Fixtures of the reliability tests: the data tests' tiny CamVid / Cityscapes trees."""

from tests.data.conftest import make_camvid, make_cityscapes  # noqa: F401
