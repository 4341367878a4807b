"""``sparsebench data fetch`` against a local HTTP server on 127.0.0.1 with an injected manifest (the test machines
have no internet): files land where the loaders read them and load; a checksum mismatch, a connection dropped
half-way, a killed download, an HTTP error, no server, an unsafe tarball and an unwritable folder each leave no
file behind and say so in one line (issue 16, item 3)."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from sparsebench.data import fetch as fetch_module
from sparsebench.data.fetch import FetchError, fetch_dataset
from sparsebench.data.fetch_manifest import MANIFEST

MNIST_RUN = ["--dataset", "mnist", "--parent", "mlp", "--hidden", "8,8", "--seeds", "1", "--sparsities", "0.5",
             "--methods", "dense,random", "--epochs", "1", "--batch-size", "20", "--no-progress"]
CIFAR_RUN = ["--dataset", "cifar10", "--parent", "cnn", "--hidden", "4,4", "--fc", "8", "--seeds", "1", "--sparsities", "0.5",
             "--methods", "dense,random", "--epochs", "1", "--batch-size", "20", "--no-progress"]


class Server:
    """Serves ``files`` (name -> bytes) at ``url``; ``mode[name]``: "drop" (half the bytes, then the connection closes),
    "stall" (half the bytes, then silence), 404 and the like (that status). Counts requests per name."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, object] = {}
        self.requests: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests[name] = server.requests.get(name, 0) + 1
                mode = server.mode.get(name)
                if isinstance(mode, int) or name not in server.files:
                    self.send_error(mode if isinstance(mode, int) else 404)
                    return
                data = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if mode in ("drop", "stall"):
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if mode == "stall":
                        time.sleep(30)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    served = Server()
    yield served
    served.close()


def pinned(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def mnist_source(formats, tmp_path: Path, server: Server) -> dict:
    """The four gzipped IDX files of a tiny MNIST served, and their manifest entry."""
    source = tmp_path / "source-mnist"
    formats.mnist(source, gz=True)
    files = []
    for base in formats.IDX_NAMES:
        data = (source / f"{base}.gz").read_bytes()
        server.files[f"{base}.gz"] = data
        files.append({"name": f"{base}.gz", **pinned(data)})
    return {"url_base": "https://example.invalid/mnist/", "page": "https://example.invalid", "folder": "mnist", "files": files}


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar_source(formats, tmp_path: Path, server: Server) -> dict:
    """A tiny cifar-10-binary.tar.gz (the binary batches and a meta file, as the official one holds) served, and its entry."""
    source = tmp_path / "source-cifar"
    formats.cifar10_bin(source)
    members = {f"cifar-10-batches-bin/{p.name}": p.read_bytes() for p in sorted((source / "cifar-10-batches-bin").iterdir())}
    data = tarball({**members, "cifar-10-batches-bin/batches.meta.txt": b"airplane\n"})
    server.files["cifar-10-binary.tar.gz"] = data
    return {"url_base": "https://example.invalid/cifar/", "page": "https://example.invalid", "folder": "",
            "files": [{"name": "cifar-10-binary.tar.gz", **pinned(data), "unpack": {m: pinned(d) for m, d in members.items()}}]}


@pytest.fixture
def manifest(monkeypatch):
    """The manifest the fetch reads, injected (starts empty)."""
    injected: dict = {}
    monkeypatch.setattr(fetch_module, "MANIFEST", injected)
    return injected


def leftovers(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, relative (hidden ones included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_mnist_is_fetched_into_the_loaders_folder_then_runs_lists_and_is_not_fetched_again(tmp_path, formats, server, manifest, cli):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    data = tmp_path / "data"
    code, out, err = cli("data", "fetch", "mnist", "--data-dir", str(data), "--url-base", server.url, "--no-progress")
    assert code == 0, err
    assert leftovers(data) == ["mnist"] + [f"mnist/{base}.gz" for base in sorted(formats.IDX_NAMES)]
    assert out.count("fetched, sha256 checked") == 4
    code, _, err = cli("run", *MNIST_RUN, "--data-dir", str(data), "--store", str(tmp_path / "s.db"))
    assert code == 0, err
    code, out, err = cli("data", "list", "--data-dir", str(data))
    assert code == 0 and any(line.split()[:2] == ["mnist", "present"] for line in out.splitlines()), out
    code, out, err = cli("data", "fetch", "mnist", "--data-dir", str(data), "--url-base", server.url, "--no-progress")
    assert code == 0, err
    assert out.count("present, sha256 checked") == 4 and set(server.requests.values()) == {1}  # nothing fetched again


def test_a_wrong_file_in_place_is_fetched_again_and_replaced(tmp_path, formats, server, manifest):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    fetch_dataset("mnist", tmp_path, server.url)
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(b"not the file")
    statuses = {r.path.name: r.status for r in fetch_dataset("mnist", tmp_path, server.url)}
    assert statuses["t10k-labels-idx1-ubyte.gz"] == "fetched" and list(statuses.values()).count("present") == 3
    assert target.read_bytes() == server.files["t10k-labels-idx1-ubyte.gz"]


def test_cifar10_tarball_is_unpacked_where_the_loader_reads_it_and_runs_a_cnn(tmp_path, formats, server, manifest, cli):
    manifest["cifar10"] = cifar_source(formats, tmp_path, server)
    data = tmp_path / "data"
    code, out, err = cli("data", "fetch", "cifar10", "--data-dir", str(data), "--url-base", server.url.rstrip("/"))
    assert code == 0, err
    expected = ["batches.meta.txt", "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                "data_batch_5.bin", "test_batch.bin"]
    assert leftovers(data) == ["cifar-10-batches-bin"] + [f"cifar-10-batches-bin/{n}" for n in expected]  # no tarball kept
    code, _, err = cli("run", *CIFAR_RUN, "--data-dir", str(data), "--store", str(tmp_path / "s.db"))
    assert code == 0, err
    code, out, _ = cli("data", "list", "--data-dir", str(data))
    assert any(line.split()[:2] == ["cifar10", "present"] for line in out.splitlines()), out
    assert {r.status for r in fetch_dataset("cifar10", data, server.url)} == {"present"}
    assert server.requests == {"cifar-10-binary.tar.gz": 1}


def one_line_refusal(code: int, err: str) -> str:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_checksum_mismatch_is_refused_and_deleted(tmp_path, formats, server, manifest, cli):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    manifest["mnist"]["files"][1]["sha256"] = "0" * 64
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "data"), "--url-base", server.url, "--no-progress")
    err = one_line_refusal(code, err)
    assert "train-labels-idx1-ubyte.gz" in err and "refused and deleted" in err and "0" * 64 in err
    assert leftovers(tmp_path / "data" / "mnist") == ["train-images-idx3-ubyte.gz"]  # the good file before it stays


def test_a_tarball_mismatch_and_an_unpacked_file_mismatch_leave_nothing(tmp_path, formats, server, manifest, cli):
    manifest["cifar10"] = cifar_source(formats, tmp_path, server)
    spec = manifest["cifar10"]["files"][0]
    good = spec["sha256"]
    spec["sha256"] = "f" * 64
    code, _, err = cli("data", "fetch", "cifar10", "--data-dir", str(tmp_path / "data"), "--url-base", server.url, "--no-progress")
    assert "refused and deleted" in one_line_refusal(code, err) and leftovers(tmp_path / "data") == []
    spec["sha256"] = good
    spec["unpack"]["cifar-10-batches-bin/test_batch.bin"]["sha256"] = "e" * 64
    code, _, err = cli("data", "fetch", "cifar10", "--data-dir", str(tmp_path / "data"), "--url-base", server.url, "--no-progress")
    assert "test_batch.bin unpacked from cifar-10-binary.tar.gz" in one_line_refusal(code, err)
    assert leftovers(tmp_path / "data") == []


def test_a_connection_dropped_half_way_leaves_no_file(tmp_path, formats, server, manifest, cli):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    server.mode["train-images-idx3-ubyte.gz"] = "drop"
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "data"), "--url-base", server.url, "--no-progress")
    err = one_line_refusal(code, err)
    assert "train-images-idx3-ubyte.gz" in err and "nothing was kept" in err
    assert leftovers(tmp_path / "data") == ["mnist"]
    code, _, err = cli("run", *MNIST_RUN, "--data-dir", str(tmp_path / "data"), "--store", str(tmp_path / "s.db"))
    assert "files not found" in one_line_refusal(code, err) and not (tmp_path / "s.db").exists()


def test_a_killed_download_leaves_no_file_that_loads_and_the_next_fetch_clears_its_leftover(tmp_path, formats, server, manifest):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    server.mode["train-images-idx3-ubyte.gz"] = "stall"
    data = tmp_path / "data"
    script = ("import json, sys\nfrom sparsebench.data import fetch\n"
              "fetch.MANIFEST = json.loads(sys.argv[1])\nfetch.fetch_dataset('mnist', sys.argv[2], sys.argv[3])\n")
    import json

    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(manifest), str(data), server.url])
    try:
        deadline = time.monotonic() + 60
        while not list((data / "mnist").glob(".train-images-idx3-ubyte.gz.sparsebench-part-*")):
            assert proc.poll() is None and time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        time.sleep(0.3)  # half the bytes written
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    left = leftovers(data / "mnist")
    assert len(left) == 1 and left[0].startswith(".train-images-idx3-ubyte.gz.sparsebench-part-")
    from sparsebench.data.files import MissingFiles
    from sparsebench.data.registry import load_dataset

    with pytest.raises(MissingFiles):
        load_dataset("mnist", data_dir=data)
    server.mode.clear()
    assert {r.status for r in fetch_dataset("mnist", data, server.url)} == {"fetched"}
    assert leftovers(data / "mnist") == sorted(f"{base}.gz" for base in formats.IDX_NAMES)
    assert len(load_dataset("mnist", data_dir=data).y_test) == 40


def test_http_errors_no_server_and_bad_names_are_one_line(tmp_path, formats, server, manifest, cli):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    server.mode["train-images-idx3-ubyte.gz"] = 404
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"), "--url-base", server.url, "--no-progress")
    assert "answered HTTP 404" in one_line_refusal(code, err) and leftovers(tmp_path / "d") == ["mnist"]
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"), "--url-base", closed, "--no-progress")
    assert "cannot download" in one_line_refusal(code, err) and leftovers(tmp_path / "d") == ["mnist"]
    code, _, err = cli("data", "fetch", "imagenet", "--data-dir", str(tmp_path / "d"))
    assert "data fetch: got 'imagenet'; allowed: one of mnist" in one_line_refusal(code, err)
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"), "--url-base", "ftp://example.org/x")
    assert "--url-base: got 'ftp://example.org/x'" in one_line_refusal(code, err)


def test_an_unwritable_data_folder_is_one_line(tmp_path, formats, server, manifest, cli):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    (tmp_path / "file").write_text("in the way")
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "file"), "--url-base", server.url, "--no-progress")
    assert "cannot write in" in one_line_refusal(code, err) and server.requests == {}
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
        code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "ro"), "--url-base", server.url, "--no-progress")
        assert "cannot write in" in one_line_refusal(code, err)


def test_a_tarball_member_outside_the_folder_is_refused_by_the_data_filter(tmp_path, server, manifest):
    data = tarball({"cifar-10-batches-bin/x.bin": b"x", "../escaped": b"!"})
    server.files["cifar-10-binary.tar.gz"] = data
    manifest["cifar10"] = {"url_base": server.url, "page": "", "folder": "",
                           "files": [{"name": "cifar-10-binary.tar.gz", **pinned(data),
                                      "unpack": {"cifar-10-batches-bin/x.bin": pinned(b"x")}}]}
    with pytest.raises(FetchError, match="cannot be unpacked safely"):
        fetch_dataset("cifar10", tmp_path / "data")
    assert leftovers(tmp_path / "data") == [] and not (tmp_path / "escaped").exists()


def test_a_progress_bar_goes_to_stderr(tmp_path, formats, server, manifest, capsys):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    fetch_dataset("mnist", tmp_path, server.url, progress=True)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_the_pinned_manifest_names_the_files_the_loaders_read():
    from sparsebench.data import cifar, idx

    assert sorted(MANIFEST) == ["cifar10", "cifar100", "fashion-mnist", "mnist"]
    for name, entry in MANIFEST.items():
        assert entry["url_base"].startswith("https://") and entry["url_base"].endswith("/")
        for spec in [*entry["files"], *(m for f in entry["files"] for m in f.get("unpack", {}).values())]:
            assert len(spec["sha256"]) == 64 and int(spec["sha256"], 16) >= 0 and spec["size"] > 0
    for name in ("mnist", "fashion-mnist"):
        assert MANIFEST[name]["folder"] == idx.SOURCES[name][0][0]
        assert [f["name"] for f in MANIFEST[name]["files"]] == [f"{base}.gz" for base in idx.IDX_FILES]
    for name in ("cifar10", "cifar100"):
        binary = cifar.DATASETS[name][1][0]
        assert binary.binary and sorted(MANIFEST[name]["files"][0]["unpack"]) == sorted(f"{binary.folder}/{f}" for f in binary.files)


def test_ctrl_c_during_a_download_leaves_no_file(tmp_path, formats, server, manifest, cli, monkeypatch):
    manifest["mnist"] = mnist_source(formats, tmp_path, server)
    real_stream = fetch_module._stream

    def interrupted(name, url, spec, out, folder, progress):
        real_stream(name, url, spec, out, folder, progress)  # the whole file written, not yet renamed
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_module, "_stream", interrupted)
    code, _, err = cli("data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"), "--url-base", server.url, "--no-progress")
    assert code == 130 and "interrupted" in err and leftovers(tmp_path / "d") == ["mnist"]


def test_cifar100_coarse_fetches_the_cifar100_files(tmp_path, server, manifest):
    members = {"cifar-100-binary/train.bin": b"t" * 10, "cifar-100-binary/test.bin": b"s" * 10}
    data = tarball(members)
    server.files["cifar-100-binary.tar.gz"] = data
    manifest["cifar100"] = {"url_base": server.url, "page": "", "folder": "",
                            "files": [{"name": "cifar-100-binary.tar.gz", **pinned(data),
                                       "unpack": {m: pinned(d) for m, d in members.items()}}]}
    assert {r.status for r in fetch_dataset("cifar100-coarse", tmp_path)} == {"fetched"}
    assert leftovers(tmp_path) == ["cifar-100-binary", "cifar-100-binary/test.bin", "cifar-100-binary/train.bin"]
