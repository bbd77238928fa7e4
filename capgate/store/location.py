"""The study store's files, on a local filesystem or on object storage (``s3://``, ``gs://``, ...).

:func:`location` turns ``--storage`` text into a :class:`Location`: a local path (or ``file://``
URI; NFS and cluster filesystems are local paths too) or a URI that :mod:`pyarrow.fs` opens
(``s3://``, ``gs://``, ``hdfs://``, ``abfs://``), with any other scheme that fsspec knows as a
fallback. ``s3://`` takes its endpoint, credentials and region from the standard AWS environment
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``);
the driver resolves them once and ships them to every worker in the URI's query string
(:meth:`Location.portable`), so nothing is read from a worker's environment. ``gs://`` likewise
takes an emulator's endpoint from ``STORAGE_EMULATOR_HOST`` (the variable Google's client libraries
read, e.g. ``http://127.0.0.1:9023``; anonymous access then) or from the URI's query
(``?endpoint_override=http://host:port``), and ships it the same way; against Google Cloud Storage itself
it uses Google's default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, forwarded to workers).

Writes are whole-file: locally through :mod:`capgate.store.atomic` (temp file, fsync, rename; files
honour the umask), on object storage as one PUT (objects are replaced atomically by the service).
``write_bytes(..., exclusive=True)`` creates a file only if it is absent and raises
``FileExistsError`` otherwise: locally by a hard link; on S3 by a conditional PUT
(``If-None-Match: *``, through boto3 when it is installed; AWS S3, MinIO, SeaweedFS and moto honour
it). Without boto3, or on another object store (``gs://`` included: pyarrow exposes no GCS
precondition), it is a best-effort check-then-write, and the
store's own rule (a final record is never replaced) still holds for every writer that looks first.
This module imports neither torch nor ray.
"""

from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from capgate.store.atomic import atomic_write

__all__ = ["Location", "location", "is_remote"]

log = logging.getLogger(__name__)

_S3_ENV = (("endpoint_override", "AWS_ENDPOINT_URL"), ("region", "AWS_REGION"))


def is_remote(text: str | os.PathLike) -> bool:
    """True for a URI of object storage (any scheme but ``file``)."""
    text = str(text)
    return "://" in text and text.partition("://")[0] != "file"


@dataclass(frozen=True)
class Location:
    """One file or folder of the store. ``local`` is its path on a local filesystem, or None on
    object storage, where ``fs`` (a pyarrow filesystem) and ``path`` (``bucket/key``) address it."""

    uri: str
    local: Path | None = None
    fs: Any = None
    path: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return str(self.local) if self.local is not None else self.uri

    def __fspath__(self) -> str:
        """A local location is a path (``Path(loc)``, ``open(loc)``); an object-store one is not."""
        if self.local is None:
            raise TypeError(f"{self.uri} is on object storage, not a local path; use its fs and path")
        return str(self.local)

    def __truediv__(self, name: str) -> Location:
        if self.local is not None:
            return Location(str(self.local / name), self.local / name)
        return Location(self.uri.rstrip("/") + "/" + name, None, self.fs, posixpath.join(self.path, name),
                        self.options)

    @property
    def name(self) -> str:
        return self.local.name if self.local is not None else posixpath.basename(self.path.rstrip("/"))

    def portable(self) -> str:
        """The text that reopens this location on another node: a local path, or the URI with the
        endpoint (and S3 region) the driver resolved (credentials stay in the environment Ray
        gives workers through the runtime environment, never in the URI)."""
        if self.local is not None:
            return str(self.local)
        if not self.options:
            return self.uri
        return f"{self.uri}?{urlencode(self.options)}"

    # -- reading ------------------------------------------------------------------------------
    def read_bytes(self) -> bytes:
        """The file's bytes; ``FileNotFoundError`` when it is absent."""
        if self.local is not None:
            return self.local.read_bytes()
        try:
            with self.fs.open_input_stream(self.path) as fh:
                return fh.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "not found" in str(exc).lower() or "nosuchkey" in str(exc).lower() or "does not exist" in str(exc):
                raise FileNotFoundError(self.uri) from exc
            raise

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def is_file(self) -> bool:
        if self.local is not None:
            return self.local.is_file()
        from pyarrow.fs import FileType

        return self.fs.get_file_info(self.path).type == FileType.File

    def files(self, suffix: str = "") -> list[Location]:
        """The files directly in this folder whose names end with ``suffix``, sorted by name."""
        if self.local is not None:
            if not self.local.is_dir():
                return []
            return [Location(str(p), p) for p in sorted(self.local.iterdir()) if p.is_file() and p.name.endswith(suffix)]
        from pyarrow.fs import FileSelector, FileType

        infos = self.fs.get_file_info(FileSelector(self.path, allow_not_found=True))
        names = sorted(posixpath.basename(i.path) for i in infos if i.type == FileType.File)
        return [self / n for n in names if n.endswith(suffix) and not n.startswith(".")]

    def folders(self) -> list[Location]:
        """The sub-folders of this folder, sorted by name."""
        if self.local is not None:
            return [Location(str(p), p) for p in sorted(self.local.iterdir()) if p.is_dir()] if self.local.is_dir() else []
        from pyarrow.fs import FileSelector, FileType

        if self.fs.type_name == "gcs":
            # pyarrow's GCS listing without recursion returns only directory marker objects, never
            # the prefixes of folders that exist because objects are under them (apache/arrow#35993),
            # and capgate writes no markers: the sub-folders are read off a recursive listing.
            infos = self.fs.get_file_info(FileSelector(self.path, allow_not_found=True, recursive=True))
            base = self.path.rstrip("/") + "/"
            names = set()
            for i in infos:
                if not i.path.startswith(base):
                    continue
                first, sep, _ = i.path[len(base):].strip("/").partition("/")
                if first and (sep or i.type == FileType.Directory):  # inside a sub-folder, or its marker
                    names.add(first)
            return [self / n for n in sorted(names)]
        infos = self.fs.get_file_info(FileSelector(self.path, allow_not_found=True))
        return [self / posixpath.basename(i.path) for i in sorted(infos, key=lambda i: i.path)
                if i.type == FileType.Directory]

    def is_dir(self) -> bool:
        if self.local is not None:
            return self.local.is_dir()
        return bool(self.files()) or bool(self.folders())

    # -- writing ------------------------------------------------------------------------------
    def write_bytes(self, data: bytes, exclusive: bool = False) -> Location:
        """Write the whole file; ``exclusive`` creates it only if absent (``FileExistsError``)."""
        if self.local is not None:
            atomic_write(self.local, lambda fh: fh.write(data), exclusive=exclusive)
            return self
        if exclusive:
            self._put_if_absent(data)
            return self
        with self.fs.open_output_stream(self.path) as fh:
            fh.write(data)
        return self

    def write_text(self, text: str, exclusive: bool = False) -> Location:
        return self.write_bytes(text.encode("utf-8"), exclusive)

    def unlink(self) -> None:
        """Remove the file if it is there."""
        if self.local is not None:
            self.local.unlink(missing_ok=True)
            return
        try:
            self.fs.delete_file(self.path)
        except (FileNotFoundError, OSError):
            pass

    def upload(self, src: Path, exclusive: bool = False) -> Location:
        """Copy the local file ``src`` here."""
        return self.write_bytes(Path(src).read_bytes(), exclusive)

    def download(self, dest: Path) -> Path:
        """Copy this file to the local path ``dest`` (atomically)."""
        data = self.read_bytes()
        atomic_write(dest, lambda fh: fh.write(data))
        return dest

    def _put_if_absent(self, data: bytes) -> None:
        if self.uri.startswith("s3://"):
            try:
                import boto3  # noqa: F401
            except ImportError:
                pass
            else:
                return self._s3_conditional_put(data)
        # Best effort (documented in the module doc): look, then write.
        if self.is_file():
            raise FileExistsError(self.uri)
        with self.fs.open_output_stream(self.path) as fh:
            fh.write(data)

    def _s3_conditional_put(self, data: bytes) -> None:
        import boto3
        from botocore.exceptions import ClientError

        opts = dict(self.options)
        bucket, _, key = self.path.partition("/")
        client = boto3.client("s3", endpoint_url=opts.get("endpoint_override") or None,
                              region_name=opts.get("region") or None)
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise FileExistsError(self.uri) from None
            if code == "NotImplemented" or status == 501:  # a store without conditional writes
                log.debug("%s: conditional PUT not supported; checking before writing", self.uri)
                if self.is_file():
                    raise FileExistsError(self.uri) from None
                client.put_object(Bucket=bucket, Key=key, Body=data)
                return
            raise


def _split_endpoint(endpoint: str) -> tuple[str, str]:
    """``http://host:9000`` -> ``("http", "host:9000")``; without a scheme, https."""
    scheme, sep, host = endpoint.partition("://")
    return (scheme, host.rstrip("/")) if sep else ("https", endpoint.rstrip("/"))


def _s3(uri: str, options: dict[str, str]) -> tuple[Any, dict[str, str]]:
    from pyarrow.fs import S3FileSystem

    opts = {k: options.get(k) or os.environ.get(env, "") for k, env in _S3_ENV}
    opts = {k: v for k, v in opts.items() if v}
    kw: dict[str, Any] = dict(opts)
    if "endpoint_override" in kw:
        kw["scheme"], kw["endpoint_override"] = _split_endpoint(kw["endpoint_override"])
    return S3FileSystem(**kw), opts


def _gcs(options: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """pyarrow's GCS filesystem for ``gs://``: the endpoint of the query or of ``STORAGE_EMULATOR_HOST``
    (an emulator: anonymous unless the query says ``anonymous=false``), else Google Cloud Storage
    with Google's default credentials."""
    from pyarrow.fs import GcsFileSystem

    endpoint = options.get("endpoint_override") or os.environ.get("STORAGE_EMULATOR_HOST", "")
    opts = {"endpoint_override": endpoint, "anonymous": options.get("anonymous") or ("true" if endpoint else "")}
    opts = {k: v for k, v in opts.items() if v}
    kw: dict[str, Any] = {}
    if endpoint:
        kw["scheme"], kw["endpoint_override"] = _split_endpoint(endpoint)
    if opts.get("anonymous", "").lower() in ("1", "true", "yes"):
        kw["anonymous"] = True
    return GcsFileSystem(**kw), opts


def location(storage: str | os.PathLike | Location) -> Location:
    """``--storage`` text (a path, ``file://`` URI or object-storage URI) -> its :class:`Location`.
    A local path is made absolute."""
    if isinstance(storage, Location):
        return storage
    text = str(storage)
    if not is_remote(text):
        if text.startswith("file://"):
            text = text[len("file://"):]
        path = Path(text).expanduser().resolve()
        return Location(str(path), path)
    parts = urlsplit(text)
    query = dict(parse_qsl(parts.query))
    uri = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    path = f"{parts.netloc}{parts.path}".rstrip("/")
    if parts.scheme == "s3":
        fs, opts = _s3(uri, query)
        return Location(uri, None, fs, path, tuple(sorted(opts.items())))
    if parts.scheme in ("gs", "gcs"):
        fs, opts = _gcs(query)
        return Location(uri, None, fs, path, tuple(sorted(opts.items())))
    try:
        from pyarrow.fs import FileSystem

        fs, path = FileSystem.from_uri(uri)
    except Exception:  # not a pyarrow scheme: fsspec's, wrapped for the same interface
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs = PyFileSystem(FSSpecHandler(fsspec.filesystem(parts.scheme, **query)))
    return Location(uri, None, fs, path)
