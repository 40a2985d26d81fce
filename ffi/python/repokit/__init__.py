"""repokit: signed RPM and APT repositories, published atomically.

In-process bindings over repokit's C ABI (``librepokit.so``), loaded with
ctypes: nothing is compiled at install time. The library is found through
``REPOKIT_LIB`` (a path to the .so), else a copy inside this package, else
the workspace's ``target/release`` (or ``target/debug``) found from the
current directory upwards.

Example::

    import repokit

    store = repokit.Store("./repokit-data")
    store.generate_key("release", uid="Release <release@example.org>")
    store.create_repo("el9", format="rpm", sign_with="release")
    store.add("el9", ["build/RPMS/x86_64/foo-1.0-1.x86_64.rpm"])
    report = store.publish("el9")
    print(report["publication"])
    store.export("el9", "/srv/mirror/el9")
    manifest = store.sync("el9", ["file:///srv/mirrors/el9", "s3://mirror-bucket/el9"])
    print(manifest["targets"][0]["packages_added"])

A store may also live in a bucket: ``repokit.Store("s3://bucket/prefix")``
(credentials from the ``AWS_*`` environment variables), its keyring in a
local directory (``local_dir``, default ``$REPOKIT_DATA`` or
``./repokit-data``).

Every failure raises a subclass of :class:`repokit.Error` (for example
:class:`InvalidPackage`, :class:`NotFound`, :class:`Conflict`).

A :class:`Store` may be used from several threads; each call blocks its
thread until the operation is done.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

__all__ = [
    "Store",
    "Error",
    "InvalidInput",
    "InvalidPackage",
    "NotFound",
    "Conflict",
    "Forbidden",
    "LimitExceeded",
    "SigningError",
    "StorageError",
    "IoError",
    "Corrupt",
    "InternalError",
    "version",
]

PathLike = Union[str, "os.PathLike[str]"]


class Error(Exception):
    """A repokit call failed. ``status`` is the C ABI's status code."""

    status: int = 13

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidInput(Error):
    """A malformed argument (name, path, spec)."""

    status = 1


class InvalidPackage(Error):
    """A package file that cannot be indexed."""

    status = 2


class NotFound(Error):
    """No such repository, key, package or publication."""

    status = 3


class Conflict(Error):
    """The request contradicts what is stored."""

    status = 4


class Forbidden(Error):
    """Not allowed here (e.g. adding to a stable repository)."""

    status = 5


class LimitExceeded(Error):
    """A size limit was exceeded."""

    status = 6


class SigningError(Error):
    """A signing key could not be made, read or used."""

    status = 7


class StorageError(Error):
    """The storage backend failed."""

    status = 8


class IoError(Error):
    """Local file IO failed."""

    status = 9


class Corrupt(Error):
    """Stored state could not be decoded."""

    status = 10


class InternalError(Error):
    """A bug in repokit or in these bindings (a NULL argument, a panic)."""

    status = 12


_BY_STATUS = {
    cls.status: cls
    for cls in (
        InvalidInput,
        InvalidPackage,
        NotFound,
        Conflict,
        Forbidden,
        LimitExceeded,
        SigningError,
        StorageError,
        IoError,
        Corrupt,
        InternalError,
    )
}
_BY_STATUS[11] = InternalError  # REPOKIT_NULL_PARAMETER
_BY_STATUS[14] = InternalError  # REPOKIT_INTERNAL


def _find_library() -> str:
    explicit = os.environ.get("REPOKIT_LIB")
    if explicit:
        return explicit
    bundled = Path(__file__).with_name("librepokit.so")
    if bundled.is_file():
        return str(bundled)
    starts = [Path.cwd(), Path(__file__).resolve().parent]
    for start in starts:
        for d in [start, *start.parents]:
            for profile in ("release", "debug"):
                candidate = d / "target" / profile / "librepokit.so"
                if candidate.is_file():
                    return str(candidate)
    raise ImportError(
        "librepokit.so not found: set REPOKIT_LIB, or build it with "
        "`cargo build --release -p repokit-ffi` in the repokit workspace"
    )


_lib = ctypes.CDLL(_find_library())
_c_char_pp = ctypes.POINTER(ctypes.c_char_p)
_out = ctypes.POINTER(ctypes.c_void_p)


def _declare(name: str, *args: Any) -> Any:
    fn = getattr(_lib, name)
    fn.argtypes = list(args)
    fn.restype = ctypes.c_int
    return fn


_lib.repokit_version.restype = ctypes.c_char_p
_lib.repokit_version.argtypes = []
_lib.repokit_last_error.restype = None
_lib.repokit_last_error.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
_lib.repokit_string_free.restype = None
_lib.repokit_string_free.argtypes = [ctypes.c_void_p]
_lib.repokit_store_free.restype = None
_lib.repokit_store_free.argtypes = [ctypes.c_void_p]
_store_open_at = _declare("repokit_store_open_at", ctypes.c_char_p, ctypes.c_char_p, _out)
_key_generate = _declare("repokit_key_generate", ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, _out)
_key_export = _declare("repokit_key_export", ctypes.c_void_p, ctypes.c_char_p, _out)
_repo_create = _declare("repokit_repo_create", ctypes.c_void_p, ctypes.c_char_p, _out)
_repo_list = _declare("repokit_repo_list", ctypes.c_void_p, _out)
_repo_show = _declare("repokit_repo_show", ctypes.c_void_p, ctypes.c_char_p, _out)
_repo_delete = _declare("repokit_repo_delete", ctypes.c_void_p, ctypes.c_char_p)
_add = _declare("repokit_add", ctypes.c_void_p, ctypes.c_char_p, _c_char_pp, ctypes.c_size_t, _out)
_remove = _declare("repokit_remove", ctypes.c_void_p, ctypes.c_char_p, _c_char_pp, ctypes.c_size_t, _out)
_publish = _declare("repokit_publish", ctypes.c_void_p, ctypes.c_char_p, _out)
_promote = _declare(
    "repokit_promote", ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, _c_char_pp, ctypes.c_size_t, ctypes.c_char_p, _out
)
_export = _declare("repokit_export", ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, _out)
_sync = _declare("repokit_sync", ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, _out)
_promote_publish_sync = _declare(
    "repokit_promote_publish_sync", ctypes.c_void_p, ctypes.c_char_p, _out
)


def version() -> str:
    """The version of the loaded library."""
    return _lib.repokit_version().decode()


def _last_error() -> str:
    n = ctypes.c_size_t(0)
    _lib.repokit_last_error(None, 0, ctypes.byref(n))
    buf = ctypes.create_string_buffer(n.value + 1)
    _lib.repokit_last_error(buf, len(buf), ctypes.byref(n))
    return buf.value.decode("utf-8", "replace")


def _check(status: int) -> None:
    if status != 0:
        cls = _BY_STATUS.get(status, Error)
        raise cls(_last_error(), status)


def _b(s: PathLike) -> bytes:
    return os.fsencode(s)


def _strings(items: Sequence[PathLike]) -> Any:
    arr = (ctypes.c_char_p * len(items))(*[_b(i) for i in items])
    return ctypes.cast(arr, _c_char_pp)


def _take(ptr: ctypes.c_void_p) -> str:
    try:
        return ctypes.string_at(ptr.value).decode()
    finally:
        _lib.repokit_string_free(ptr)


class Store:
    """A repokit store: a local data directory (its keys in ``DIR/keys``),
    or a bucket ``s3://BUCKET[/PREFIX][?endpoint=URL]`` whose keyring and
    staged uploads are in ``local_dir`` (default ``$REPOKIT_DATA`` or
    ``./repokit-data``); bucket credentials come from the ``AWS_*``
    environment variables.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path_or_url: PathLike, local_dir: Optional[PathLike] = None) -> None:
        handle = ctypes.c_void_p()
        local = _b(local_dir) if local_dir is not None else None
        _check(_store_open_at(_b(path_or_url), local, ctypes.byref(handle)))
        self._h: Optional[ctypes.c_void_p] = handle

    def close(self) -> None:
        """Releases the store; further calls raise :class:`InvalidInput`."""
        if self._h is not None:
            _lib.repokit_store_free(self._h)
            self._h = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _handle(self) -> ctypes.c_void_p:
        if self._h is None:
            raise InvalidInput("the store is closed")
        return self._h

    def _json(self, fn: Any, *args: Any) -> Any:
        out = ctypes.c_void_p()
        _check(fn(self._handle(), *args, ctypes.byref(out)))
        return json.loads(_take(out))

    def generate_key(self, name: str, uid: str = "repokit repository signing key", algo: str = "rsa4096") -> Dict[str, Any]:
        """Generates a signing key (``rsa4096`` or ``ed25519``)."""
        return self._json(_key_generate, name.encode(), uid.encode(), algo.encode())

    def key_export(self, name: str) -> str:
        """The armored public key of ``name``."""
        out = ctypes.c_void_p()
        _check(_key_export(self._handle(), name.encode(), ctypes.byref(out)))
        return _take(out)

    def create_repo(
        self,
        name: str,
        format: str,
        codename: Optional[str] = None,
        component: Optional[str] = None,
        architectures: Optional[List[str]] = None,
        sign_with: Optional[str] = None,
        role: str = "test",
        ttl: Optional[str] = None,
        members: Optional[List[str]] = None,
        compression: Optional[str] = None,
        vendor_signatures: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Creates a repository (``format``: ``rpm`` or ``deb``; ``role``:
        ``test``, ``stable`` or ``composite``)."""
        spec: Dict[str, Any] = {"name": name, "format": format, "role": role}
        for key, value in (
            ("codename", codename),
            ("component", component),
            ("architectures", architectures),
            ("sign_with", sign_with),
            ("ttl", ttl),
            ("members", members),
            ("compression", compression),
            ("vendor_signatures", vendor_signatures),
        ):
            if value is not None:
                spec[key] = value
        return self._json(_repo_create, json.dumps(spec).encode())

    def repos(self) -> List[Dict[str, Any]]:
        """Every repository."""
        return self._json(_repo_list)

    def repo(self, name: str) -> Dict[str, Any]:
        """One repository: config, head, live publication, package count."""
        return self._json(_repo_show, name.encode())

    def delete_repo(self, name: str) -> None:
        """Deletes a repository (its files are collected later)."""
        _check(_repo_delete(self._handle(), name.encode()))

    def add(self, name: str, paths: Sequence[PathLike]) -> Dict[str, Any]:
        """Adds package files as one new revision; a bad file adds nothing."""
        return self._json(_add, name.encode(), _strings(paths), len(paths))

    def remove(self, name: str, specs: Sequence[str]) -> Dict[str, Any]:
        """Removes packages by file name, name, name-version or identity."""
        return self._json(_remove, name.encode(), _strings(specs), len(specs))

    def publish(self, name: str) -> Dict[str, Any]:
        """Renders, signs and atomically switches the live publication."""
        return self._json(_publish, name.encode())

    def promote(
        self,
        src: str,
        dst: str,
        packages: Optional[Sequence[str]] = None,
        change: Optional[str] = None,
        publish: bool = False,
        sync: Optional[Sequence[str]] = None,
    ) -> Dict[str, Any]:
        """Promotes ``src``'s published packages (all, or those matching
        ``packages``) into ``dst`` by reference, re-signing RPMs for
        ``dst``'s key; ``change`` is recorded as provenance. With
        ``publish``, ``dst`` is then published, and with ``sync`` (mirror
        target URLs; needs ``publish``) pushed to those mirrors: the merge
        step in one call, its reports under ``"publish"`` and ``"sync"``."""
        specs = list(packages or [])
        if publish or sync:
            spec = {
                "from": src,
                "to": dst,
                "packages": specs,
                "publish": publish,
                "sync": list(sync or []),
            }
            if change is not None:
                spec["change"] = change
            return self._json(_promote_publish_sync, json.dumps(spec).encode())
        return self._json(
            _promote,
            src.encode(),
            dst.encode(),
            _strings(specs),
            len(specs),
            change.encode() if change is not None else None,
        )

    def export(self, name: str, dir: PathLike) -> Dict[str, Any]:
        """Writes the live publication into ``dir`` (a symlink swapped atomically)."""
        return self._json(_export, name.encode(), _b(dir))

    def sync(
        self,
        name: str,
        targets: Sequence[str],
        keep: Optional[int] = None,
        keep_days: Optional[int] = None,
        grace: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Pushes the live publication to mirror ``targets`` (``file:///DIR``,
        ``s3://BUCKET[/PREFIX]``) as one transaction: every target is
        prepared before any is switched. Returns the sync manifest (per
        target: packages added and removed, bytes sent, whether it switched).
        ``keep``/``keep_days``/``grace`` set each target's retention."""
        spec: Dict[str, Any] = {"targets": list(targets)}
        for key, value in (("keep", keep), ("keep_days", keep_days), ("grace", grace)):
            if value is not None:
                spec[key] = value
        return self._json(_sync, name.encode(), json.dumps(spec).encode())
