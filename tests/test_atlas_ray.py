"""`atlas build --ray` on a local 2-CPU Ray cluster writes the same tables as the serial build."""

import pytest

from embspace import open_model
from embspace.atlas import build_atlas

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_build_equals_serial_build(local_cluster, tiny_model, tmp_path):
    from test_atlas import read_all

    model = open_model(str(tiny_model("llama")))
    serial = build_atlas(model, tmp_path / "serial", k=9, progress=False)
    fanned = build_atlas(model, tmp_path / "ray", k=9, use_ray=True, progress=False)
    assert fanned.built == serial.built == 6
    assert read_all(tmp_path / "ray") == read_all(tmp_path / "serial")
    resumed = build_atlas(model, tmp_path / "ray", k=9, use_ray=True, progress=False)
    assert (resumed.built, resumed.skipped) == (0, 6)
