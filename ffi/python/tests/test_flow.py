"""The whole flow through the Python module: RPM and DEB repositories
created, filled, published, exported and synced to mirrors in-process, a
store kept in a bucket; the results are then checked with the real dnf
(gpgcheck=1, repo_gpgcheck=1) and apt-get (signed-by) in isolated
configurations, as in the Rust end-to-end tests. Buckets are served by moto
(`REPOKIT_MOTO_SERVER`, else `moto_server` on PATH)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

import repokit


def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{cmd}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def build_rpm(out: Path, name: str, version: str) -> Path:
    top = out / f"rpmbuild-{name}"
    spec = top / f"{name}.spec"
    spec.parent.mkdir(parents=True)
    spec.write_text(textwrap.dedent(f"""\
        Name: {name}
        Version: {version}
        Release: 1
        Summary: {name} for the Python tests
        License: MIT
        BuildArch: noarch
        %description
        A leaf package.
        %install
        mkdir -p %{{buildroot}}/usr/share/{name}
        echo {version} > %{{buildroot}}/usr/share/{name}/VERSION
        %files
        /usr/share/{name}/VERSION
        """))
    run("rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", str(spec))
    return next((top / "RPMS" / "noarch").glob("*.rpm"))


def build_deb(out: Path, name: str, version: str) -> Path:
    root = out / f"deb-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        f"Maintainer: tests <tests@example.org>\nDescription: a leaf package\n made for the Python tests.\n"
    )
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "VERSION").write_text(version)
    deb = out / f"{name}_{version}_all.deb"
    run("dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(root), str(deb))
    return deb


def dnf(tmp: Path, baseurl: str, key: Path, *args: str) -> str:
    for d in ("root", "repos.d", "cache", "log", "persist"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    conf = tmp / "dnf.conf"
    conf.write_text(
        f"[main]\nreposdir={tmp / 'repos.d'}\ncachedir={tmp / 'cache'}\nlogdir={tmp / 'log'}\n"
        f"persistdir={tmp / 'persist'}\nplugins=0\ngpgcheck=1\nrepo_gpgcheck=1\n"
    )
    (tmp / "repos.d" / "py.repo").write_text(
        f"[py]\nname=py\nbaseurl={baseurl}\ngpgkey=file://{key}\ngpgcheck=1\nrepo_gpgcheck=1\n"
        "metadata_expire=0\nskip_if_unavailable=0\nenabled=1\n"
    )
    return run(
        "dnf", "-y", f"--config={conf}", f"--installroot={tmp / 'root'}", "--releasever=1",
        "--forcearch=x86_64", "--noplugins", "--disablerepo=*", "--enablerepo=py", *args,
    ).stdout


def apt(tmp: Path, source: str, *args: str) -> str:
    root = tmp / "root"
    for d in (
        root / "var/lib/dpkg/updates", root / "var/lib/dpkg/info", tmp / "etc/apt.conf.d",
        tmp / "etc/preferences.d", tmp / "etc/sources.list.d", tmp / "etc/trusted.gpg.d",
        tmp / "state/lists/partial", tmp / "cache/archives/partial", tmp / "log",
    ):
        d.mkdir(parents=True, exist_ok=True)
    status = root / "var/lib/dpkg/status"
    if not status.exists():
        status.write_text("")
    (tmp / "etc/sources.list").write_text(source + "\n")
    conf = tmp / "apt.conf"
    conf.write_text(textwrap.dedent(f"""\
        Dir::Etc "{tmp}/etc";
        Dir::Etc::sourcelist "{tmp}/etc/sources.list";
        Dir::Etc::sourceparts "{tmp}/etc/sources.list.d";
        Dir::Etc::trusted "{tmp}/etc/trusted.gpg";
        Dir::Etc::trustedparts "{tmp}/etc/trusted.gpg.d";
        Dir::Etc::preferencesparts "{tmp}/etc/preferences.d";
        Dir::Etc::parts "{tmp}/etc/apt.conf.d";
        Dir::State "{tmp}/state";
        Dir::State::status "{status}";
        Dir::Cache "{tmp}/cache";
        Dir::Log "{tmp}/log";
        APT::Architecture "amd64";
        APT::Architectures {{ "amd64"; }};
        APT::Sandbox::User "root";
        Debug::NoLocking "true";
        Acquire::Languages "none";
        DPkg::Options {{ "--root={root}"; "--force-not-root"; "--force-script-chrootless"; "--log={tmp}/log/dpkg.log"; }};
        """))
    p = run(args[0], *args[1:], env={"APT_CONFIG": str(conf), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    bad = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith(("W:", "E:"))]
    assert not bad, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A moto S3 server on a free loopback port; yields its endpoint."""
    program = os.environ.get("REPOKIT_MOTO_SERVER") or shutil.which("moto_server")
    assert program, "moto_server not found: run scripts/test or set REPOKIT_MOTO_SERVER"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [program, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "repokit-test",
        "AWS_SECRET_ACCESS_KEY": "repokit-test",
        "AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait()


def public_bucket(endpoint: str, name: str) -> None:
    """A bucket anyone may read over plain HTTP, as a public mirror is."""
    def put(url: str, data: bytes = b"", headers: dict = {}) -> None:
        req = urllib.request.Request(url, data=data, method="PUT", headers=headers)
        urllib.request.urlopen(req).read()

    put(f"{endpoint}/{name}")
    put(f"{endpoint}/{name}?acl", headers={"x-amz-acl": "public-read"})
    policy = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
        f'"Action":"s3:GetObject","Resource":"arn:aws:s3:::{name}/*"}}]}}'
    )
    put(f"{endpoint}/{name}?policy", policy.encode(), {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    with repokit.Store(data) as s:
        s.generate_key("py", uid="Python tests <py@example.org>")
        yield s


def test_version():
    assert repokit.version().count(".") == 2


def test_rpm_flow_is_accepted_by_dnf(store, tmp_path):
    rpm = build_rpm(tmp_path, "rk-py", "1.0")
    store.create_repo("py-rpm", format="rpm", sign_with="py")
    added = store.add("py-rpm", [rpm])
    assert [p["name"] for p in added["added"]] == ["rk-py"]
    report = store.publish("py-rpm")
    assert not report["noop"] and report["packages"] == 1
    assert store.repo("py-rpm")["published"] == report["publication"]
    assert "py-rpm" in [r["name"] for r in store.repos()]
    export = tmp_path / "export"
    store.export("py-rpm", export)
    key = tmp_path / "py.asc"
    key.write_text(store.key_export("py"))
    out = dnf(tmp_path / "dnf", f"file://{export}", key, "repoquery", "--quiet", "--queryformat", "%{name}\n")
    assert out.split() == ["rk-py"]
    dnf(tmp_path / "dnf", f"file://{export}", key, "install", "rk-py")
    assert (tmp_path / "dnf/root/usr/share/rk-py/VERSION").is_file()

    # Promotion into a stable repository, which refuses direct uploads.
    store.create_repo("py-stable", format="rpm", role="stable", sign_with="py")
    with pytest.raises(repokit.Forbidden):
        store.add("py-stable", [rpm])
    promoted = store.promote("py-rpm", "py-stable", change="I1")
    assert [p["origin"]["change"] for p in promoted["promoted"]] == ["I1"]
    assert "publish" not in promoted and "sync" not in promoted

    # The merge step in one call: promote, publish, sync; dnf installs the
    # promoted package from the mirror with the stable key.
    store.create_repo("py-stable-2", format="rpm", role="stable", sign_with="py")
    with pytest.raises(repokit.InvalidInput):
        store.promote("py-rpm", "py-stable-2", sync=[f"file://{tmp_path / 'nowhere'}"])
    mirror = tmp_path / "merge-mirror"
    merged = store.promote("py-rpm", "py-stable-2", change="I2", publish=True, sync=[f"file://{mirror}"])
    assert [p["name"] for p in merged["promoted"]] == ["rk-py"]
    assert merged["publish"]["packages"] == 1
    assert merged["sync"]["publication"] == merged["publish"]["publication"]
    dnf(tmp_path / "dnf-merge", f"file://{mirror}/current", key, "install", "rk-py")
    assert (tmp_path / "dnf-merge/root/usr/share/rk-py/VERSION").is_file()


def test_deb_flow_is_accepted_by_apt(store, tmp_path):
    deb = build_deb(tmp_path, "rk-py-deb", "1.0")
    store.create_repo("py-deb", format="deb", codename="bookworm", architectures=["amd64", "all"], sign_with="py")
    store.add("py-deb", [deb])
    store.publish("py-deb")
    export = tmp_path / "export"
    store.export("py-deb", export)
    key = tmp_path / "py.asc"
    key.write_text(store.key_export("py"))
    source = f"deb [signed-by={key}] file:{export} bookworm main"
    apt(tmp_path / "apt", source, "apt-get", "update")
    policy = apt(tmp_path / "apt", source, "apt-cache", "policy", "rk-py-deb")
    assert "Candidate: 1.0" in policy
    apt(tmp_path / "apt", source, "apt-get", "install", "-y", "rk-py-deb")
    assert (tmp_path / "apt/root/usr/share/rk-py-deb/VERSION").is_file()
    removed = store.remove("py-deb", ["rk-py-deb"])
    assert len(removed["removed"]) == 1


def test_one_store_serves_several_threads(store, tmp_path):
    import threading

    rpms = [build_rpm(tmp_path, f"rk-thread-{i}", "1.0") for i in range(4)]
    for i in range(4):
        store.create_repo(f"py-thread-{i}", format="rpm")
    errors: list = []

    def work(i: int) -> None:
        try:
            store.add(f"py-thread-{i}", [rpms[i]])
            store.publish(f"py-thread-{i}")
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [store.repo(f"py-thread-{i}")["packages"] for i in range(4)] == [1, 1, 1, 1]


def test_errors_are_typed(store, tmp_path):
    bad = tmp_path / "bad.rpm"
    bad.write_text("not a package\n")
    store.create_repo("py-errors", format="rpm")
    with pytest.raises(repokit.InvalidPackage) as e:
        store.add("py-errors", [bad])
    assert "bad.rpm" in str(e.value) and isinstance(e.value, repokit.Error)
    assert store.repo("py-errors")["packages"] == 0
    with pytest.raises(repokit.NotFound):
        store.repo("no-such-repo")
    with pytest.raises(repokit.Conflict):
        store.create_repo("py-errors", format="rpm")
    with pytest.raises(repokit.InvalidInput):
        store.create_repo("../up", format="rpm")
    with pytest.raises(repokit.InvalidInput):
        repokit.Store("ftp://bucket/prefix")
    with pytest.raises(repokit.InvalidInput):
        store.sync("py-errors", ["ftp://elsewhere"])
    store.delete_repo("py-errors")
    with pytest.raises(repokit.NotFound):
        store.delete_repo("py-errors")


def test_sync_to_a_directory_and_a_bucket(store, moto, tmp_path):
    public_bucket(moto, "py-mirror")
    rpm = build_rpm(tmp_path, "rk-py-sync", "1.0")
    store.create_repo("py-sync", format="rpm", sign_with="py")
    store.add("py-sync", [rpm])
    publication = store.publish("py-sync")["publication"]
    mirror = tmp_path / "mirror"
    manifest = store.sync(
        "py-sync", [f"file://{mirror}", f"s3://py-mirror/el?endpoint={moto}"], keep=2, grace="1h"
    )
    assert manifest["publication"] == publication
    for target in manifest["targets"]:
        assert target["switched"]
        assert target["packages_added"] == ["Packages/r/rk-py-sync-1.0-1.noarch.rpm"]
    key = tmp_path / "py.asc"
    key.write_text(store.key_export("py"))
    for i, url in enumerate([f"file://{mirror}/current", f"{moto}/py-mirror/el"]):
        dnf(tmp_path / f"dnf-{i}", url, key, "install", "rk-py-sync")
        assert (tmp_path / f"dnf-{i}/root/usr/share/rk-py-sync/VERSION").is_file()
    again = store.sync("py-sync", [f"file://{mirror}"])
    assert not again["targets"][0]["switched"]


def test_a_store_in_a_bucket(moto, tmp_path):
    public_bucket(moto, "py-store")
    deb = build_deb(tmp_path, "rk-py-bucket", "1.0")
    with repokit.Store(f"s3://py-store/data?endpoint={moto}", local_dir=tmp_path / "local") as s:
        s.generate_key("k", uid="Bucket <k@example.org>", algo="ed25519")
        s.create_repo("py-bucket", format="deb", codename="bookworm", sign_with="k")
        s.add("py-bucket", [deb])
        s.publish("py-bucket")
        assert [r["name"] for r in s.repos()] == ["py-bucket"]
        mirror = tmp_path / "mirror"
        s.sync("py-bucket", [f"file://{mirror}"])
        key = tmp_path / "k.asc"
        key.write_text(s.key_export("k"))
    source = f"deb [signed-by={key}] file:{mirror}/current bookworm main"
    apt(tmp_path / "apt", source, "apt-get", "update")
    apt(tmp_path / "apt", source, "apt-get", "install", "-y", "rk-py-bucket")
    assert (tmp_path / "apt/root/usr/share/rk-py-bucket/VERSION").is_file()
    # Nothing of the store is local: the local directory holds the keyring
    # and the staging area.
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == [".tmp", "keys"]
