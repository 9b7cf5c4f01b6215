"""The guest image's pieces without an engine: build ids, the initramfs, the QEMU launch."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest

from oxydra.core.errors import RunnerError
from oxydra.runner._bootstrap import load_guest_config
from oxydra.runner._buildid import archive_build_id
from oxydra.runner._image import check_build_id
from oxydra.runner._kernel import initramfs, load_order, uncompressed_kernel
from oxydra.runner._qemu import launch_file, qemu_argv
from oxydra.runner._rootfs import compose
from tests.runner.test_bootstrap import make_spec


def _archive(path: Path, build_id: str) -> Path:
    import zipfile

    import build_pyz

    native = path.with_name("mod.so")
    native.write_bytes(b"\x7fELF native" * 64)
    entries, methods = [("native/pkg/mod.so", native)], [build_pyz.DEFLATED]
    packed = build_pyz.pack_all([(native, build_pyz.DEFLATED)], None)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__main__.py", f'import os\nBUILD_ID = "{build_id}"  # replaced\n')
        zf.writestr(build_pyz.PACK, build_pyz.build_pack(entries, methods, packed))
    return path


class TestBuildIds:
    def test_the_archive_build_id_is_read_back(self, tmp_path: Path) -> None:
        assert archive_build_id(_archive(tmp_path / "o.pyz", "0.3.0-abc")) == "0.3.0-abc"

    @pytest.mark.parametrize("build_id", ["dev", "x y"])
    def test_a_dev_or_odd_build_is_refused(self, tmp_path: Path, build_id: str) -> None:
        with pytest.raises(RunnerError, match="no build id"):
            archive_build_id(_archive(tmp_path / "o.pyz", build_id))

    def test_a_guest_of_another_build_is_refused_with_the_rebuild_command(self) -> None:
        with pytest.raises(RunnerError) as caught:
            check_build_id("0.3.0-old", "0.3.0-new", "the guest image oxydra-vm:latest")
        text = str(caught.value)
        assert "0.3.0-old" in text and "0.3.0-new" in text and "runner image build" in text

    def test_the_same_build_passes_and_a_source_tree_only_warns(self) -> None:
        assert check_build_id("b1", "b1", "x") is None
        assert "not checked" in str(check_build_id("b1", None, "x"))


def test_the_rootfs_has_the_archive_a_non_root_user_and_no_setuid(tmp_path: Path) -> None:
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as tar:
        for name, data, mode in (
            ("./etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
            ("./etc/group", b"root:x:0:\n", 0o644),
            ("./usr/bin/su", b"#!", 0o4755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "rootfs.tar"
    compose(base, _archive(tmp_path / "o.pyz", "b1"), "b1", (10001, 10001), out)
    with tarfile.open(out) as tar:
        members = {m.name.removeprefix("./"): m for m in tar}
        passwd = tar.extractfile(members["etc/passwd"]).read().decode()  # type: ignore[union-attr]
        unpacked = members["opt/oxydra/pyz-cache/b1/pkg/mod.so"]
        native = tar.extractfile(unpacked).read()  # type: ignore[union-attr]
    assert "oxydra:x:10001:10001:" in passwd
    assert members["usr/bin/su"].mode & 0o6000 == 0
    assert "opt/oxydra/oxydra.pyz" in members and "sbin/oxydra-init" in members
    assert native == b"\x7fELF native" * 64  # natives unpacked (the root is read-only)
    assert unpacked.mode & 0o444 == 0o444


def _module(path: Path, depends: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF....\0license=GPL\0depends=" + depends.encode() + b"\0name=x\0")


def test_modules_load_after_what_they_depend_on(tmp_path: Path) -> None:
    _module(tmp_path / "fs/9p/9p.ko", "9pnet,netfs")
    _module(tmp_path / "net/9p/9pnet.ko", "")
    _module(tmp_path / "fs/netfs/netfs.ko", "")
    order = [p.name for p in load_order(tmp_path, ("9p",))]
    assert order.index("9p.ko") > order.index("9pnet.ko") and order[-1] == "9p.ko"
    with pytest.raises(RunnerError, match="no module ext4"):
        load_order(tmp_path, ("ext4",))


def test_the_initramfs_is_a_newc_cpio_with_init_busybox_and_modules(tmp_path: Path) -> None:
    _module(tmp_path / "drivers/virtio/virtio_mmio.ko", "")
    for name in ("virtio_blk", "virtio_net", "virtio_console", "crc32c_generic", "ext4"):
        _module(tmp_path / f"m/{name}.ko", "")
    for name in ("9pnet_virtio", "9p"):
        _module(tmp_path / f"m/{name}.ko", "")
    data = gzip.decompress(initramfs(b"BUSYBOX", tmp_path))
    assert data.startswith(b"070701") and data.rstrip(b"\0").endswith(b"TRAILER!!!")
    for name in (b"init\0", b"bin/busybox\0", b"dev/console\0", b"lib/modules/9p.ko\0"):
        assert name in data
    assert b"mount -t 9p" in data and b"switch_root /newroot /sbin/oxydra-init" in data


def test_the_kernel_is_unpacked_from_its_xz_payload() -> None:
    elf = b"\x7fELF" + b"kernel" * 100
    assert uncompressed_kernel(b"MZ setup code" + lzma.compress(elf)) == elf
    with pytest.raises(RunnerError, match="no xz payload"):
        uncompressed_kernel(b"MZ nothing here")


class TestQemuLaunch:
    @pytest.fixture
    def spec(self, tmp_path: Path):  # type: ignore[no-untyped-def]
        cwd = tmp_path / "cwd"
        (cwd / ".oxydra" / "users").mkdir(parents=True)
        (cwd / ".oxydra" / "runner.toml").write_text(
            'default_tier = "micro_vm"\n[users.alice]\nconfig_path = "users/alice.toml"\n'
        )
        (cwd / ".oxydra" / "users" / "alice.toml").write_text(
            "[resources]\nmax_vcpus = 2\nmax_memory_mib = 768\nmax_processes = 40\n"
        )
        environ = {
            "PATH": "/usr/bin:/bin",
            "OPENAI_API_KEY": "sk-test",
            "AWS_SECRET_ACCESS_KEY": "nope",
            "OXYDRA__PROVIDERS__REGISTRY__OPENAI__BASE_URL": "http://127.0.0.1:11434/v1",
        }
        return make_spec(tmp_path, environ, env=["SHELL_EDITOR=vi"])

    def test_the_guest_sees_its_workspace_shares_and_nothing_of_the_runners(
        self, spec, tmp_path: Path
    ) -> None:  # type: ignore[no-untyped-def]
        argv = qemu_argv(spec, tmp_path / "img", "qemu", 40000, spec.workspace.ipc / "c.sock")
        paths = [a for a in argv if a.startswith("local,")]
        ws = spec.workspace
        assert len(paths) == 6
        assert any(f"path={ws.vault}," in p and "readonly=on" in p for p in paths)
        assert any(f"path={ws.ipc}/guest," in p for p in paths)
        assert not any(f"path={ws.ipc}," in p or f"path={ws.root}," in p for p in paths)
        text = " ".join(argv)
        assert "-smp 2" in text and "-m 768" in text and "-accel kvm" in text
        assert "hostfwd=tcp:127.0.0.1:40000-:8790" in text and "-sandbox on" in text

    def test_the_launch_file_carries_limits_and_only_the_needed_secrets(self, spec) -> None:  # type: ignore[no-untyped-def]
        launch = launch_file(spec, load_guest_config(spec), ["OPENAI_API_KEY"])
        assert launch["uid"] != 0 and launch["shell_limits"]["pids.max"] == 40
        assert launch["shell_limits"]["memory.max"] == 384 * 1024 * 1024
        assert launch["env"]["OPENAI_API_KEY"] == "sk-test"
        assert "AWS_SECRET_ACCESS_KEY" not in launch["env"]
        assert launch["shell_env"]["EDITOR"] == "vi" and "OPENAI_API_KEY" not in launch["shell_env"]
        assert launch["loopback_ports"] == [11434]  # a local model is relayed into the guest


def test_a_vm_that_kvm_refused_counts_as_ended(tmp_path: Path) -> None:
    """QEMU stays up, paused, after a KVM internal error: the runner must not wait on it."""
    import subprocess

    from oxydra.runner._qemu import QemuGuest

    log = tmp_path / "oxydra-vm.stderr.log"
    log.write_text("")
    proc = subprocess.Popen(["sleep", "60"])
    guest = QemuGuest(proc, tmp_path / "ctl.sock", log)
    try:
        assert guest.exit_code() is None
        log.write_text("KVM internal error. Suberror: 1\nemulation failure\n")
        assert guest.exit_code() is not None and proc.poll() is not None
    finally:
        guest.stop(grace=0)
