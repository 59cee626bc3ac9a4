"""The project library: Project -> Shot -> Variant -> Take, in SQLite beside the media files.

- One SQLite file (WAL, foreign keys on, ``PRAGMA user_version`` as the schema version, with
  explicit migrations; a copy of the file is kept before any migration of existing data).
- Every change runs in a ``BEGIN IMMEDIATE`` transaction; a second connection writing at the
  same time waits (busy timeout) instead of failing.
- Opening a damaged database never loses it: the file is moved aside to
  ``library.sqlite3.damaged-<timestamp>`` and :class:`LibraryDamaged` says where it is; a fresh
  library is started only when the caller asks (``Library.open(path, recover=True)``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shotsketch.core import leftovers, paths
from shotsketch.core.layout import Layout
from shotsketch.core.library_file import create_whole, statements, wal_damage, wal_has_saved_changes, wal_path

DB_NAME = "library.sqlite3"
SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 10.0
_SQLITE_HEADER = b"SQLite format 3\x00"


# Files written beside a take's clip (its recipe sidecar, its layout-guidance heatmaps): removed
# with the clip when the trash is emptied.
TAKE_COMPANION_SUFFIXES = (".json", ".heatmaps.npz")


class LibraryError(Exception):
    """A library problem a person can act on; the message says what happened and what to do."""


class LibraryDamaged(LibraryError):
    """The database file is damaged. ``kept_at`` is where the damaged file now is."""

    def __init__(self, message: str, kept_at: Path | None):
        super().__init__(message)
        self.kept_at = kept_at


# -- values -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    created_at: str


@dataclass(frozen=True)
class Shot:
    id: int
    project_id: int
    name: str
    position: int
    created_at: str


@dataclass(frozen=True)
class Variant:
    id: int
    shot_id: int
    prompt: str
    negative_prompt: str
    layout_json: str | None
    settings: dict[str, Any]
    parent_id: int | None
    created_at: str
    note: str = ""

    def layout(self) -> Layout | None:
        return Layout.from_json(self.layout_json) if self.layout_json else None


@dataclass(frozen=True)
class Take:
    id: int
    variant_id: int
    file: Path
    recipe: dict[str, Any]
    thumbnail: Path | None
    rating: int
    favourite: bool
    created_at: str
    deleted: bool


@dataclass(frozen=True)
class Export:
    """A clip exported from a take: the file (a folder for a PNG sequence), its format (a
    ``ClipFormat`` value: mp4, prores, dnxhr, png, gif), its frame rate, the editor timeline it
    was written for, and when (the last time it was written)."""

    id: int
    take_id: int
    format: str
    file: Path
    fps: float | None
    timeline: Path | None
    created_at: str

    @property
    def missing(self) -> bool:
        """The file is no longer where it was written (moved or deleted)."""
        return not os.path.lexists(self.file)


@dataclass(frozen=True)
class Job:
    """A generation waiting in (or running from) the queue kept in the library.

    ``request_json`` is the immutable request as JSON (the engine's ``GenerationRequest.to_dict``);
    ``claimed_by`` names the window (process) that runs it, ``None`` while no window has it."""

    id: str
    shot_id: int
    variant_id: int
    request_json: str
    state: str  # one of JOB_STATES
    claimed_by: str | None
    created_at: str

    def request(self) -> dict[str, Any]:
        return json.loads(self.request_json)


JOB_STATES = ("queued", "running")
"""A job row exists while the job waits or runs; it is removed when the job ends (its take, if any,
is then in ``takes``)."""


@dataclass(frozen=True)
class VariantNode:
    """A variant and the variants made from it."""

    variant: Variant
    children: tuple[VariantNode, ...] = field(default=())


@dataclass(frozen=True)
class VariantRow:
    """One row of :meth:`Library.variant_rows`: a project, one of its shots and one of that shot's
    variants with its count of takes (not in the trash). A project without shots comes as one row
    with ``shot_id`` None; a shot without variants as one row with ``variant`` None."""

    project_id: int
    project_name: str
    shot_id: int | None
    shot_name: str | None
    variant: Variant | None
    take_count: int


# -- schema and migrations --------------------------------------------------------------------------


MIGRATION_0_TO_1 = """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE shots (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE INDEX shots_project ON shots(project_id);
        CREATE TABLE variants (
            id INTEGER PRIMARY KEY,
            shot_id INTEGER NOT NULL REFERENCES shots(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES variants(id) ON DELETE SET NULL,
            prompt TEXT NOT NULL,
            negative_prompt TEXT NOT NULL DEFAULT '',
            layout_json TEXT,
            settings_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX variants_shot ON variants(shot_id);
        CREATE TABLE takes (
            id INTEGER PRIMARY KEY,
            variant_id INTEGER NOT NULL REFERENCES variants(id) ON DELETE CASCADE,
            file TEXT NOT NULL,
            recipe_json TEXT NOT NULL DEFAULT '{}',
            thumbnail TEXT,
            rating INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
            favourite INTEGER NOT NULL DEFAULT 0 CHECK (favourite IN (0, 1)),
            created_at TEXT NOT NULL
        );
        CREATE INDEX takes_variant ON takes(variant_id);
"""


# Version 2: trash for takes, variant notes, full-text search, shot autosave, app state.
MIGRATION_1_TO_2 = """
        ALTER TABLE takes ADD COLUMN deleted_at TEXT;
        ALTER TABLE variants ADD COLUMN note TEXT NOT NULL DEFAULT '';
        CREATE VIRTUAL TABLE variants_fts USING fts5(
            prompt, negative_prompt, content='variants', content_rowid='id'
        );
        INSERT INTO variants_fts(rowid, prompt, negative_prompt) SELECT id, prompt, negative_prompt FROM variants;
        CREATE TRIGGER variants_fts_insert AFTER INSERT ON variants BEGIN
            INSERT INTO variants_fts(rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
        END;
        CREATE TRIGGER variants_fts_delete AFTER DELETE ON variants BEGIN
            INSERT INTO variants_fts(variants_fts, rowid, prompt, negative_prompt)
                VALUES ('delete', old.id, old.prompt, old.negative_prompt);
        END;
        CREATE TRIGGER variants_fts_update AFTER UPDATE OF prompt, negative_prompt ON variants BEGIN
            INSERT INTO variants_fts(variants_fts, rowid, prompt, negative_prompt)
                VALUES ('delete', old.id, old.prompt, old.negative_prompt);
            INSERT INTO variants_fts(rowid, prompt, negative_prompt) VALUES (new.id, new.prompt, new.negative_prompt);
        END;
        CREATE TABLE shot_state (
            shot_id INTEGER PRIMARY KEY REFERENCES shots(id) ON DELETE CASCADE,
            state_json TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE app_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
"""


# Version 3: the generation queue (jobs claimed by the window that runs them) and the lookup of a
# variant by its content ("same content, same variant", kept across restarts).
MIGRATION_2_TO_3 = """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            shot_id INTEGER NOT NULL REFERENCES shots(id) ON DELETE CASCADE,
            variant_id INTEGER NOT NULL REFERENCES variants(id) ON DELETE CASCADE,
            request_json TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running')),
            claimed_by TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX variants_content ON variants(shot_id, prompt, negative_prompt);
"""


# Version 4: the clips exported from takes (and the editor timeline each was written for).
MIGRATION_3_TO_4 = """
        CREATE TABLE exports (
            id INTEGER PRIMARY KEY,
            take_id INTEGER NOT NULL REFERENCES takes(id) ON DELETE CASCADE,
            format TEXT NOT NULL,
            file TEXT NOT NULL,
            fps REAL,
            timeline TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (take_id, file)
        );
        CREATE INDEX exports_file ON exports(file);
"""


MIGRATIONS: list[tuple[int, str]] = [
    (1, MIGRATION_0_TO_1),
    (2, MIGRATION_1_TO_2),
    (3, MIGRATION_2_TO_3),
    (4, MIGRATION_3_TO_4),
]
"""``(version, script)``: the SQL that brings a database at ``version - 1`` to ``version``.
Each runs in one transaction together with the new ``user_version``."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _after(stamp: str) -> str:
    """The `_now()` form of one millisecond after `stamp` (itself in that form)."""
    from datetime import timedelta

    try:
        return (datetime.fromisoformat(stamp) + timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
    except ValueError:
        return _now()


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _aside_path(path: Path, label: str) -> Path:
    candidate = path.with_name(f"{path.name}.{label}-{_timestamp()}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{label}-{_timestamp()}-{n}")
    return candidate


# -- the library ------------------------------------------------------------------------------------


class Library:
    """The project library. Open it with :meth:`open`; close it with :meth:`close` (or use it
    as a context manager). Safe to share between threads: calls are serialized."""

    def __init__(self, db: sqlite3.Connection, path: Path, media_dir: Path, recovered_from: Path | None = None):
        self._db = db
        self._lock = threading.RLock()
        self.path = path
        self.media_dir = media_dir
        self.recovered_from = recovered_from
        """Where a damaged database was kept, when this library was started fresh because of it."""

    # -- opening
    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        *,
        recover: bool = False,
        media_dir: Path | str | None = None,
        busy_timeout: float = BUSY_TIMEOUT_S,
        salvage_from: Path | None = None,
    ) -> Library:
        """Open (creating if need be) the library at ``path`` (default: the user data dir).

        A damaged file is moved aside and :class:`LibraryDamaged` raised, saying where it is kept;
        with ``recover=True`` a fresh library is started instead (``recovered_from`` says where the
        damaged one went), holding what SQLite can still read of the damaged file (the one found
        now, or ``salvage_from``: the ``kept_at`` of an earlier :class:`LibraryDamaged`). A library
        from a newer Shotsketch raises :class:`LibraryError`."""
        db_path = Path(path) if path is not None else paths.data_dir() / DB_NAME
        media = Path(media_dir) if media_dir is not None else db_path.parent / "media"
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            media.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"Cannot create the library folder {db_path.parent}: {exc.strerror or exc}") from None
        leftovers.clean(db_path.parent)  # a library creation or backup a killed start left behind
        leftovers.clean(media)  # a copy into the media folder cut short by a kill
        try:
            # a fresh library after damage keeps what can be read of the damaged one (kept aside)
            cls._create_if_missing(db_path, salvage_from=salvage_from if recover else None)
            db = cls._connect_checked(db_path, busy_timeout)
        except _Damaged as damage:
            kept = cls._move_aside(db_path)
            journal = wal_path(kept)
            also = f" (with its journal, {journal})" if journal.exists() else ""
            if not recover:
                raise LibraryDamaged(
                    f"The library file {db_path} is damaged ({damage}). It was kept, unchanged, at {kept}{also}. "
                    "Start again to go on with what can still be read; the damaged file can be sent for repair.",
                    kept,
                ) from None
            cls._create_if_missing(db_path, salvage_from=kept)
            db = cls._connect_checked(db_path, busy_timeout)
            lib = cls(db, db_path, media, recovered_from=kept)
        else:
            lib = cls(db, db_path, media)
        try:
            lib._migrate()
        except BaseException:
            db.close()
            raise
        lib.remove_orphaned_media()
        return lib

    @staticmethod
    def _create_if_missing(db_path: Path, salvage_from: Path | None = None) -> None:
        """A new library file is made whole (its schema complete) before it appears under its name,
        so that two processes starting at once never see a half-made one. ``salvage_from``: a
        damaged library kept aside; what SQLite can still read of it goes into the new file."""
        if db_path.exists():
            return

        def build(db: sqlite3.Connection) -> None:
            if salvage_from is not None and _salvage(salvage_from, db):
                return
            _run_migrations(db, 0)

        try:
            create_whole(db_path, build)
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(f"Cannot create the library file {db_path}: {getattr(exc, 'strerror', None) or exc}") from None

    @staticmethod
    def _connect_checked(db_path: Path, busy_timeout: float) -> sqlite3.Connection:
        if db_path.exists():
            try:
                with open(db_path, "rb") as fh:
                    header = fh.read(len(_SQLITE_HEADER))
            except OSError as exc:
                raise LibraryError(f"Cannot read the library file {db_path}: {exc.strerror or exc}") from None
            if not header and not wal_has_saved_changes(db_path):
                # new libraries appear whole (see _create_if_missing): an empty one lost its content
                raise _Damaged("the file is empty (0 bytes)")
            if header and header != _SQLITE_HEADER:
                raise _Damaged("it is not a database file")
            damage = wal_damage(db_path)
            if damage:
                raise _Damaged(damage)
        try:
            # mode=rw: never create an empty file here (a moved or deleted library is an error)
            db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=rw", uri=True, timeout=busy_timeout,
                                 isolation_level=None, check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise LibraryError(f"Cannot open the library file {db_path}: {exc}") from None
        try:
            db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            db.execute("PRAGMA foreign_keys = ON")
            check = db.execute("PRAGMA quick_check").fetchall()
            if [tuple(r) for r in check] != [("ok",)]:
                raise _Damaged("the integrity check failed: " + "; ".join(str(r[0]) for r in check[:3]))
            db.execute("PRAGMA synchronous = FULL")
        except _Damaged:
            db.close()
            raise
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise LibraryError(
                    f"The library {db_path} is busy in another program; close it and try again."
                ) from None
            raise LibraryError(f"Cannot open the library file {db_path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise _Damaged(str(exc)) from None
        return db

    @staticmethod
    def _move_aside(db_path: Path) -> Path:
        kept = _aside_path(db_path, "damaged")
        try:
            os.replace(db_path, kept)
            for suffix in ("-wal", "-shm"):
                side = db_path.with_name(db_path.name + suffix)
                if side.exists():
                    os.replace(side, kept.with_name(kept.name + suffix))
        except OSError as exc:
            raise LibraryDamaged(
                f"The library file {db_path} is damaged and could not be moved aside ({exc.strerror or exc}); "
                "it was left where it is. Move or copy it somewhere safe, then start Shotsketch again.",
                None,
            ) from None
        return kept

    def _refuse_if_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"The library {self.path} was made by a newer Shotsketch (library version {version}; this one "
                f"reads up to {SCHEMA_VERSION}). Update Shotsketch to open it; the file was not changed."
            )

    def _migrate(self) -> None:
        version = self.schema_version()
        self._refuse_if_newer(version)
        # WAL (readers never block the writer); set only once the file is known to be ours to change
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            pass  # another connection is busy switching it; the library works in either mode
        if version == SCHEMA_VERSION:
            return
        # The version is read again under the write lock: another process (a second window, a CLI
        # command) may have upgraded the file since; the upgrade and its backup happen once.
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                version = self.schema_version()
                if version < SCHEMA_VERSION:
                    if version > 0:
                        self._backup_committed(_aside_path(self.path, f"before-v{SCHEMA_VERSION}"))
                    _run_migrations(self._db, version)
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise LibraryError(
                    f"Could not upgrade the library {self.path} to version {SCHEMA_VERSION}: {exc}. "
                    "The file was left as it was."
                ) from None
        self._refuse_if_newer(version)

    def _backup_committed(self, dest: Path) -> None:
        """A copy of the library as last committed, through a second connection (this one holds the
        write lock, which readers do not wait for)."""
        reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        tmp = dest.with_name(leftovers.owned_name(dest.name, "tmp"))
        try:
            target = sqlite3.connect(tmp)
            try:
                reader.backup(target)
            finally:
                target.close()
            os.replace(tmp, dest)
        finally:
            reader.close()
            tmp.unlink(missing_ok=True)

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def backup(self, dest: Path | str) -> Path:
        """A consistent copy of the library written to ``dest`` (through a temporary file)."""
        dest = Path(dest)
        tmp = dest.with_name(leftovers.owned_name(dest.name, "tmp"))
        with self._lock:
            target = sqlite3.connect(tmp)
            try:
                self._db.backup(target)
            finally:
                target.close()
        os.replace(tmp, dest)
        return dest

    def integrity_check(self) -> list[str]:
        """The full ``PRAGMA integrity_check``; ``["ok"]`` when the file is sound."""
        with self._lock:
            return [str(r[0]) for r in self._db.execute("PRAGMA integrity_check").fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise LibraryError(
                    f"The library is busy (another window or program is writing to it): {exc}. Try again."
                ) from None
            try:
                yield self._db
            except sqlite3.OperationalError as exc:  # disk full, read-only, I/O error: said in one line
                self._db.execute("ROLLBACK")
                raise LibraryError(_storage_problem(self.path, exc)) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    if self._db.in_transaction:  # a failed COMMIT (disk full...) must not leave it open
                        self._db.execute("ROLLBACK")
                    raise LibraryError(_storage_problem(self.path, exc)) from None

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(sql, args)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def _one(self, sql: str, args: tuple[Any, ...], what: str) -> dict[str, Any]:
        rows = self._read(sql, args)
        if not rows:
            raise LibraryError(f"{what} is not in the library (it may have been deleted)")
        return rows[0]

    # -- projects
    def create_project(self, name: str) -> Project:
        name = _clean_name(name, "project")
        with self._write() as db:
            now = _now()
            cur = db.execute("INSERT INTO projects(name, created_at) VALUES (?, ?)", (name, now))
            return Project(int(cur.lastrowid), name, now)

    def list_projects(self) -> list[Project]:
        return [Project(r["id"], r["name"], r["created_at"]) for r in self._read("SELECT * FROM projects ORDER BY id")]

    def get_project(self, project_id: int) -> Project:
        r = self._one("SELECT * FROM projects WHERE id = ?", (project_id,), f"Project {project_id}")
        return Project(r["id"], r["name"], r["created_at"])

    def rename_project(self, project_id: int, name: str) -> Project:
        name = _clean_name(name, "project")
        with self._write() as db:
            if db.execute("UPDATE projects SET name = ? WHERE id = ?", (name, project_id)).rowcount != 1:
                raise LibraryError(f"Project {project_id} is not in the library (it may have been deleted)")
        return self.get_project(project_id)

    def delete_project(self, project_id: int) -> None:
        """Delete a project with its shots, variants and takes (the clip files stay on disk)."""
        with self._write() as db:
            db.execute("DELETE FROM projects WHERE id = ?", (project_id,))

    # -- shots
    def create_shot(self, project_id: int, name: str) -> Shot:
        name = _clean_name(name, "shot")
        with self._write() as db:
            self._require(db, "projects", project_id, "Project")
            position = db.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM shots WHERE project_id = ?", (project_id,)
            ).fetchone()[0]
            now = _now()
            cur = db.execute(
                "INSERT INTO shots(project_id, name, position, created_at) VALUES (?, ?, ?, ?)",
                (project_id, name, position, now),
            )
            return Shot(int(cur.lastrowid), project_id, name, int(position), now)

    def list_shots(self, project_id: int) -> list[Shot]:
        return [_shot(r) for r in self._read("SELECT * FROM shots WHERE project_id = ? ORDER BY position, id", (project_id,))]

    def get_shot(self, shot_id: int) -> Shot:
        return _shot(self._one("SELECT * FROM shots WHERE id = ?", (shot_id,), f"Shot {shot_id}"))

    def rename_shot(self, shot_id: int, name: str) -> Shot:
        name = _clean_name(name, "shot")
        with self._write() as db:
            if db.execute("UPDATE shots SET name = ? WHERE id = ?", (name, shot_id)).rowcount != 1:
                raise LibraryError(f"Shot {shot_id} is not in the library (it may have been deleted)")
        return self.get_shot(shot_id)

    def delete_shot(self, shot_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM shots WHERE id = ?", (shot_id,))

    # -- variants
    def create_variant(
        self,
        shot_id: int,
        prompt: str,
        negative_prompt: str = "",
        layout: Layout | str | None = None,
        settings: dict[str, Any] | None = None,
        parent_id: int | None = None,
        note: str = "",
    ) -> Variant:
        """A new variant of a shot; ``parent_id`` is the variant it was made from."""
        layout_json, settings_json = _variant_content(prompt, negative_prompt, layout, settings)
        with self._write() as db:
            return self._insert_variant(db, shot_id, prompt, negative_prompt, layout_json, settings_json,
                                        parent_id, note)

    def _insert_variant(self, db: sqlite3.Connection, shot_id: int, prompt: str, negative_prompt: str,
                        layout_json: str | None, settings_json: str, parent_id: int | None, note: str) -> Variant:
        self._require(db, "shots", shot_id, "Shot")
        if parent_id is not None:
            row = db.execute("SELECT shot_id FROM variants WHERE id = ?", (parent_id,)).fetchone()
            if row is None:
                raise LibraryError(f"Variant {parent_id} is not in the library (it may have been deleted)")
            if row[0] != shot_id:
                raise LibraryError(f"Variant {parent_id} belongs to another shot; a variant's parent must be of the same shot")
        now = _now()
        cur = db.execute(
            "INSERT INTO variants(shot_id, parent_id, prompt, negative_prompt, layout_json, settings_json, "
            "created_at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (shot_id, parent_id, prompt, negative_prompt, layout_json, settings_json, now, note),
        )
        return Variant(int(cur.lastrowid), shot_id, prompt, negative_prompt, layout_json,
                       json.loads(settings_json), parent_id, now, note)

    def variant_for_content(
        self,
        shot_id: int,
        prompt: str,
        negative_prompt: str = "",
        layout: Layout | str | None = None,
        settings: dict[str, Any] | None = None,
        parent_id: int | None = None,
    ) -> tuple[Variant, bool]:
        """The shot's variant with exactly this content (prompt, negative prompt, layout, settings),
        created (with ``parent_id``) when there is none: ``(variant, created)``. One transaction, so
        two windows asking at once get the same variant, and a restart never duplicates one."""
        layout_json, settings_json = _variant_content(prompt, negative_prompt, layout, settings)
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM variants WHERE shot_id = ? AND prompt = ? AND negative_prompt = ? "
                "AND layout_json IS ? AND settings_json = ? ORDER BY id LIMIT 1",
                (shot_id, prompt, negative_prompt, layout_json, settings_json),
            ).fetchone()
            if row is None:
                return self._insert_variant(db, shot_id, prompt, negative_prompt, layout_json, settings_json,
                                            parent_id, ""), True
        return self.get_variant(int(row[0])), False

    def delete_variant_if_unused(self, variant_id: int) -> bool:
        """Remove a variant that has no takes, no queued jobs and no child variants (one made for
        a job that was then cancelled). Returns whether it was removed."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM variants WHERE id = ? AND NOT EXISTS (SELECT 1 FROM takes WHERE variant_id = ?) "
                "AND NOT EXISTS (SELECT 1 FROM jobs WHERE variant_id = ?) "
                "AND NOT EXISTS (SELECT 1 FROM variants AS c WHERE c.parent_id = ?)",
                (variant_id, variant_id, variant_id, variant_id),
            )
            return cur.rowcount == 1

    def used_seeds(self, variant_id: int) -> set[int]:
        """The seeds of the variant's takes (trashed ones too) and of its queued jobs."""
        rows = self._read("SELECT recipe_json AS text FROM takes WHERE variant_id = ? "
                          "UNION ALL SELECT request_json AS text FROM jobs WHERE variant_id = ?",
                          (variant_id, variant_id))
        seeds: set[int] = set()
        for r in rows:
            try:
                data = json.loads(r["text"])
            except ValueError:
                continue
            request = data.get("request", data) if isinstance(data, dict) else None
            seed = request.get("seed") if isinstance(request, dict) else None
            if isinstance(seed, int) and not isinstance(seed, bool):
                seeds.add(seed)
        return seeds

    def get_variant(self, variant_id: int) -> Variant:
        return _variant(self._one("SELECT * FROM variants WHERE id = ?", (variant_id,), f"Variant {variant_id}"))

    def list_variants(self, shot_id: int) -> list[Variant]:
        return [_variant(r) for r in self._read("SELECT * FROM variants WHERE shot_id = ? ORDER BY id", (shot_id,))]

    def variant_history(self, variant_id: int) -> list[Variant]:
        """The variant's ancestry, oldest first, ending with the variant itself."""
        rows = self._read(
            """
            WITH RECURSIVE chain(id, depth) AS (
                SELECT id, 0 FROM variants WHERE id = ?
                UNION ALL
                SELECT v.parent_id, chain.depth + 1 FROM variants v JOIN chain ON v.id = chain.id
                WHERE v.parent_id IS NOT NULL AND chain.depth < 10000
            )
            SELECT variants.* FROM chain JOIN variants ON variants.id = chain.id ORDER BY chain.depth DESC
            """,
            (variant_id,),
        )
        if not rows:
            raise LibraryError(f"Variant {variant_id} is not in the library (it may have been deleted)")
        return [_variant(r) for r in rows]

    def variant_tree(self, shot_id: int) -> list[VariantNode]:
        """The shot's variants as a forest: roots (no parent) with their descendants."""
        variants = self.list_variants(shot_id)
        children: dict[int | None, list[Variant]] = {}
        for v in variants:
            children.setdefault(v.parent_id, []).append(v)

        def build(v: Variant) -> VariantNode:
            return VariantNode(v, tuple(build(c) for c in children.get(v.id, [])))

        return [build(v) for v in children.get(None, [])]

    def search(self, text: str, *, limit: int = 100) -> list[Variant]:
        """Variants whose prompt or negative prompt contains every word of ``text`` (word
        prefixes match: "ball" finds "balloon"), best matches first."""
        words = re.findall(r"\w+", text or "")
        if not words:
            return []
        query = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
        rows = self._read(
            "SELECT variants.* FROM variants_fts JOIN variants ON variants.id = variants_fts.rowid "
            "WHERE variants_fts MATCH ? ORDER BY bm25(variants_fts) LIMIT ?",
            (query, int(limit)),
        )
        found = [_variant(r) for r in rows]
        seen = {v.id for v in found}
        for export in self.search_exports(text, limit=limit):  # "final cut.mov" finds its variant
            if len(found) >= limit:
                break
            variant_id = self.get_take(export.take_id).variant_id
            if variant_id not in seen:
                seen.add(variant_id)
                found.append(self.get_variant(variant_id))
        return found

    def variant_rows(self) -> list[VariantRow]:
        """Every project, shot and variant with its take count, in one query (the library panel's
        tree): projects by id, shots by position, variants by id."""
        rows = self._read(
            """
            SELECT p.id AS p_id, p.name AS p_name, s.id AS s_id, s.name AS s_name, v.*,
                   (SELECT COUNT(*) FROM takes t WHERE t.variant_id = v.id AND t.deleted_at IS NULL) AS take_count
            FROM projects p
            LEFT JOIN shots s ON s.project_id = p.id
            LEFT JOIN variants v ON v.shot_id = s.id
            ORDER BY p.id, s.position, s.id, v.id
            """
        )
        return [VariantRow(r["p_id"], r["p_name"], r["s_id"], r["s_name"],
                           _variant(r) if r["id"] is not None else None, int(r["take_count"] or 0)) for r in rows]

    # -- takes
    def new_media_path(self, suffix: str = ".mp4", prefix: str = "take") -> Path:
        """A fresh file path in the media folder for a new clip or thumbnail."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        # the process id in the name: a clip whose take a kill kept from being recorded is found
        # (its owner gone, no take naming it) and removed at the next open
        return self.media_dir / f"{prefix}-{stamp}-pid{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"

    def remove_orphaned_media(self) -> list[Path]:
        """Remove the media files this app named for a take that was never recorded (its process
        was killed between writing the clip and adding the take), with their companions; files
        of a running process, files any take names and files the app did not name stay."""
        try:
            entries = list(self.media_dir.iterdir())
        except OSError:
            return []
        candidates = [p for p in entries if _owner_of_media(p.name) is not None]
        if not candidates:
            return []
        named = {Path(r[c]).name for r in self._read("SELECT file, thumbnail FROM takes") for c in ("file", "thumbnail")
                 if r[c]}
        removed = []
        for path in candidates:
            base = path.name
            for suffix in TAKE_COMPANION_SUFFIXES:
                base = base.removesuffix(suffix)
            if base in named or path.name in named or leftovers.is_running(_owner_of_media(path.name) or 0):
                continue
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
        return removed

    def add_take(
        self,
        variant_id: int,
        file: Path | str,
        recipe: dict[str, Any] | None = None,
        thumbnail: Path | str | None = None,
    ) -> Take:
        """Record a generated clip (already written, e.g. to :meth:`new_media_path`)."""
        recipe_json = _dumps(recipe or {}, "recipe")
        with self._write() as db:
            self._require(db, "variants", variant_id, "Variant")
            now = _now()
            cur = db.execute(
                "INSERT INTO takes(variant_id, file, recipe_json, thumbnail, created_at) VALUES (?, ?, ?, ?, ?)",
                (variant_id, self._store_path(file), recipe_json,
                 self._store_path(thumbnail) if thumbnail is not None else None, now),
            )
            take_id = int(cur.lastrowid)
        return self.get_take(take_id)

    def get_take(self, take_id: int) -> Take:
        return self._take(self._one("SELECT * FROM takes WHERE id = ?", (take_id,), f"Take {take_id}"))

    def list_takes(self, variant_id: int, *, include_deleted: bool = False) -> list[Take]:
        sql = "SELECT * FROM takes WHERE variant_id = ?" + ("" if include_deleted else " AND deleted_at IS NULL")
        return [self._take(r) for r in self._read(sql + " ORDER BY id", (variant_id,))]

    def list_favourites(self) -> list[Take]:
        return [self._take(r) for r in self._read(
            "SELECT * FROM takes WHERE favourite = 1 AND deleted_at IS NULL ORDER BY id")]

    def list_trash(self) -> list[Take]:
        return [self._take(r) for r in self._read("SELECT * FROM takes WHERE deleted_at IS NOT NULL ORDER BY id")]

    def set_rating(self, take_id: int, rating: int) -> Take:
        if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
            raise LibraryError(f"A rating is a whole number from 0 to 5, not {rating!r}")
        self._update_take(take_id, "rating = ?", (rating,))
        return self.get_take(take_id)

    def set_favourite(self, take_id: int, favourite: bool) -> Take:
        self._update_take(take_id, "favourite = ?", (1 if favourite else 0,))
        return self.get_take(take_id)

    def trash_take(self, take_id: int) -> Take:
        self._update_take(take_id, "deleted_at = COALESCE(deleted_at, ?)", (_now(),))
        return self.get_take(take_id)

    def restore_take(self, take_id: int) -> Take:
        self._update_take(take_id, "deleted_at = NULL", ())
        return self.get_take(take_id)

    def empty_trash(self) -> int:
        """Delete the trashed takes and their files in the media folder (files elsewhere are the
        user's and are left alone). Returns how many takes were removed."""
        with self._write() as db:
            rows = db.execute("SELECT id, file, thumbnail FROM takes WHERE deleted_at IS NOT NULL").fetchall()
            db.execute("DELETE FROM takes WHERE deleted_at IS NOT NULL")
        media = self.media_dir.resolve()
        for _, file, thumb in rows:
            companions = [f"{file}{suffix}" for suffix in TAKE_COMPANION_SUFFIXES] if file else []
            for stored in (file, thumb, *companions):
                if not stored:
                    continue
                p = self._resolve_path(stored).resolve()
                if p.is_relative_to(media) and p.is_file():
                    try:
                        p.unlink()
                    except OSError:
                        pass  # the row is gone; a leftover file harms nothing
        return len(rows)

    def _update_take(self, take_id: int, assignment: str, args: tuple[Any, ...]) -> None:
        with self._write() as db:
            if db.execute(f"UPDATE takes SET {assignment} WHERE id = ?", (*args, take_id)).rowcount != 1:
                raise LibraryError(f"Take {take_id} is not in the library (it may have been deleted)")

    def _store_path(self, p: Path | str) -> str:
        path = Path(p)
        try:
            return path.resolve().relative_to(self.media_dir.resolve()).as_posix()
        except ValueError:
            return str(path.resolve())

    def _resolve_path(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else self.media_dir / path

    def _take(self, r: dict[str, Any]) -> Take:
        return Take(
            r["id"], r["variant_id"], self._resolve_path(r["file"]), json.loads(r["recipe_json"]),
            self._resolve_path(r["thumbnail"]) if r["thumbnail"] else None, int(r["rating"]), bool(r["favourite"]),
            r["created_at"], r["deleted_at"] is not None,
        )

    # -- the generation queue
    def add_jobs(self, jobs: list[tuple[str, int, int, str]], claimed_by: str | None = None) -> list[Job]:
        """Queue jobs ``(job_id, shot_id, variant_id, request_json)`` in one transaction, claimed by
        ``claimed_by`` (the window that will run them) or by no one."""
        now = _now()
        with self._write() as db:
            for job_id, shot_id, variant_id, request_json in jobs:
                self._require(db, "variants", variant_id, "Variant")
                db.execute(
                    "INSERT INTO jobs(id, shot_id, variant_id, request_json, claimed_by, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id, shot_id, variant_id, request_json, claimed_by, now),
                )
        return [Job(job_id, shot_id, variant_id, request_json, "queued", claimed_by, now)
                for job_id, shot_id, variant_id, request_json in jobs]

    def list_jobs(self) -> list[Job]:
        """Every queued or running job, in the order they were queued."""
        return [_job(r) for r in self._read("SELECT * FROM jobs ORDER BY rowid")]

    def get_job(self, job_id: str) -> Job | None:
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def claim_jobs(self, owner: str, stale_owners: set[str] | None = None) -> list[Job]:
        """Claim for ``owner`` every job no one holds, and those held by ``stale_owners`` (windows
        that are gone); running ones among them go back to queued. Atomic: of two windows claiming
        at once, each job goes to exactly one. Returns the jobs claimed, oldest first."""
        stale = sorted(stale_owners or ())
        marks = ",".join("?" * len(stale))
        where = "claimed_by IS NULL" + (f" OR claimed_by IN ({marks})" if stale else "")
        with self._write() as db:
            ids = [r[0] for r in db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY rowid", stale)]
            for job_id in ids:
                db.execute("UPDATE jobs SET claimed_by = ?, state = 'queued' WHERE id = ?", (owner, job_id))
        return [job for job in self.list_jobs() if job.id in set(ids)]

    def set_job_running(self, job_id: str, owner: str) -> bool:
        """Mark the job running for ``owner``; False when another window holds it or it is gone."""
        with self._write() as db:
            cur = db.execute("UPDATE jobs SET state = 'running' WHERE id = ? AND claimed_by = ?", (job_id, owner))
            return cur.rowcount == 1

    def release_jobs(self, owner: str) -> int:
        """Give back every job ``owner`` holds (the window closes): they wait, queued, for the next
        window or start. Returns how many."""
        with self._write() as db:
            return db.execute("UPDATE jobs SET claimed_by = NULL, state = 'queued' WHERE claimed_by = ?",
                              (owner,)).rowcount

    def remove_job(self, job_id: str) -> None:
        """The job ended (done, failed or cancelled): it leaves the queue."""
        with self._write() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def job_owners(self) -> set[str]:
        return {r["claimed_by"] for r in self._read("SELECT DISTINCT claimed_by FROM jobs WHERE claimed_by IS NOT NULL")}

    # -- exports
    def add_export(self, take_id: int, fmt: str, file: Path | str, *, fps: float | None = None,
                   timeline: Path | str | None = None) -> Export:
        """Record a clip exported from a take. Writing the same file again (a re-export) updates
        its row: format, rate and time; the timeline is kept unless a new one is given."""
        stored = str(Path(file).resolve())
        timeline_text = str(Path(timeline).resolve()) if timeline is not None else None
        with self._write() as db:
            self._require(db, "takes", take_id, "Take")
            # "most recently written first" must hold for two writes in one millisecond too (a re-export
            # right after another export tied with it and fell behind it by id): never earlier than
            # the latest time recorded, one millisecond after it on a tie
            latest = db.execute("SELECT MAX(created_at) FROM exports").fetchone()[0]
            now = _now()
            if latest is not None and now <= latest:
                now = _after(latest)
            db.execute(
                "INSERT INTO exports(take_id, format, file, fps, timeline, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(take_id, file) DO UPDATE SET format = excluded.format, fps = excluded.fps, "
                "timeline = COALESCE(excluded.timeline, exports.timeline), created_at = excluded.created_at",
                (take_id, str(fmt), stored, None if fps is None else float(fps), timeline_text, now),
            )
            row = db.execute("SELECT id FROM exports WHERE take_id = ? AND file = ?", (take_id, stored)).fetchone()
        return self.get_export(int(row[0]))

    def get_export(self, export_id: int) -> Export:
        return _export(self._one("SELECT * FROM exports WHERE id = ?", (export_id,), f"Export {export_id}"))

    def list_exports(self, take_id: int) -> list[Export]:
        """The take's exports, the most recently written first."""
        return [_export(r) for r in self._read(
            "SELECT * FROM exports WHERE take_id = ? ORDER BY created_at DESC, id DESC", (take_id,))]

    def exports_of_file(self, file: Path | str) -> list[Export]:
        """The exports written to ``file`` (of any take), the most recent first."""
        return [_export(r) for r in self._read(
            "SELECT * FROM exports WHERE file = ? ORDER BY created_at DESC, id DESC", (str(Path(file).resolve()),))]

    def set_export_timeline(self, export_ids: list[int] | tuple[int, ...], timeline: Path | str) -> None:
        """Note the editor timeline these exports were put on."""
        with self._write() as db:
            db.executemany("UPDATE exports SET timeline = ? WHERE id = ?",
                           [(str(Path(timeline).resolve()), int(i)) for i in export_ids])

    def forget_export(self, export_id: int) -> None:
        """Remove an export's row (its file, if still there, is left alone)."""
        with self._write() as db:
            db.execute("DELETE FROM exports WHERE id = ?", (export_id,))

    def search_exports(self, text: str, *, limit: int = 100) -> list[Export]:
        """Exports whose file name, timeline name or format holds every word of ``text`` as the
        start of a word ("kite" finds "Kite take 3.mov"), the most recent first."""
        words = [w.lower() for w in re.findall(r"\w+", text or "")]
        if not words:
            return []
        found: list[Export] = []
        for r in self._read("SELECT * FROM exports ORDER BY created_at DESC, id DESC"):
            export = _export(r)
            names = [export.file.name, export.timeline.name if export.timeline else "", export.format]
            tokens = re.findall(r"\w+", " ".join(names).lower())
            if all(any(t.startswith(w) for t in tokens) for w in words):
                found.append(export)
                if len(found) >= limit:
                    break
        return found

    def find_take_by_file(self, file: Path | str) -> Take | None:
        """The take whose clip is ``file``, if the library has one (one not in the trash first)."""
        rows = self._read("SELECT * FROM takes WHERE file = ? ORDER BY deleted_at IS NOT NULL, id DESC LIMIT 1",
                          (self._store_path(file),))
        return self._take(rows[0]) if rows else None

    # -- autosave and app state
    def save_shot_state(self, shot_id: int, state: dict[str, Any]) -> None:
        """Autosave the editor's state for a shot (the prompt being typed, the canvas, ...)."""
        state_json = _dumps(state, "shot state")
        with self._write() as db:
            self._require(db, "shots", shot_id, "Shot")
            db.execute(
                "INSERT INTO shot_state(shot_id, state_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(shot_id) DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at",
                (shot_id, state_json, _now()),
            )

    def load_shot_state(self, shot_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT state_json FROM shot_state WHERE shot_id = ?", (shot_id,))
        return json.loads(rows[0]["state_json"]) if rows else None

    def set_last_open_shot(self, shot_id: int | None) -> None:
        with self._write() as db:
            if shot_id is None:
                db.execute("DELETE FROM app_state WHERE key = 'last_open_shot'")
                return
            self._require(db, "shots", shot_id, "Shot")
            db.execute(
                "INSERT INTO app_state(key, value) VALUES ('last_open_shot', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(int(shot_id)),),
            )

    def last_open_shot(self) -> Shot | None:
        """The shot open when the app last closed, if it still exists."""
        rows = self._read(
            "SELECT shots.* FROM app_state JOIN shots ON shots.id = CAST(app_state.value AS INTEGER) "
            "WHERE app_state.key = 'last_open_shot'"
        )
        return _shot(rows[0]) if rows else None

    # -- helpers
    @staticmethod
    def _require(db: sqlite3.Connection, table: str, row_id: int, what: str) -> None:
        if db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)).fetchone() is None:
            raise LibraryError(f"{what} {row_id} is not in the library (it may have been deleted)")


class _Damaged(Exception):
    pass


def _storage_problem(path: Path, exc: sqlite3.Error) -> str:
    """One line for a change the library could not save; nothing of it was kept, and every change
    saved before is still there."""
    text = str(exc)
    if "full" in text:
        return (f"The disk holding the library {path} is full; the last change was not saved (earlier ones "
                "are safe). Free some space and try again.")
    return f"The library {path} could not save the last change ({text}); earlier changes are safe. Try again."


def _run_migrations(db: sqlite3.Connection, version: int) -> None:
    """Bring a database at ``version`` to :data:`SCHEMA_VERSION` inside the caller's transaction
    (or, on a file being created, in one of its own)."""
    own = not db.in_transaction
    if own:
        db.execute("BEGIN IMMEDIATE")
    for target, script in MIGRATIONS:
        if target > version:
            for statement in statements(script):
                db.execute(statement)
    db.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")
    if own:
        db.execute("COMMIT")


def _salvage(kept: Path, into: sqlite3.Connection) -> bool:
    """Copy what SQLite can still read of a damaged library (kept aside, left unchanged: it is read
    from a copy) into ``into``; False when nothing sound can be read."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=leftovers.owned_name("library", "salvage")) as folder:
        copy = Path(folder) / "library.sqlite3"
        try:
            shutil.copyfile(kept, copy)
            if wal_path(kept).exists():
                shutil.copyfile(wal_path(kept), wal_path(copy))
            source = sqlite3.connect(copy)
            try:
                sound = [tuple(r) for r in source.execute("PRAGMA quick_check").fetchall()] == [("ok",)]
                version = int(source.execute("PRAGMA user_version").fetchone()[0])
                if not sound or not 0 < version <= SCHEMA_VERSION:
                    return False
                source.backup(into)
            finally:
                source.close()
        except (OSError, sqlite3.Error):
            return False
    return True


_MEDIA_NAME = re.compile(r"^[a-z]+-\d{8}-\d{6}-pid(?P<pid>\d+)-[0-9a-f]{8}\.")


def _owner_of_media(name: str) -> int | None:
    """The process that named a media file (``new_media_path``), or ``None`` for another name."""
    match = _MEDIA_NAME.match(name)
    return int(match["pid"]) if match else None


def _clean_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise LibraryError(f"A {what} needs a name")
    return " ".join(name.split())


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise LibraryError(f"The {what} cannot be stored: {exc}") from None


def _variant_content(prompt: str, negative_prompt: str, layout: Layout | str | None,
                     settings: dict[str, Any] | None) -> tuple[str | None, str]:
    """A variant's layout and settings in their one stored form (validated, compact, sorted), so
    equal content is equal text in the database."""
    if not isinstance(prompt, str) or not isinstance(negative_prompt, str):
        raise LibraryError("A variant's prompt and negative prompt must be text")
    if isinstance(layout, Layout):
        layout_json: str | None = layout.to_json(indent=None)
    elif isinstance(layout, str):
        layout_json = Layout.from_json(layout).to_json(indent=None)  # validated before it is stored
    else:
        layout_json = None
    return layout_json, _dumps(settings or {}, "settings")


def _job(r: dict[str, Any]) -> Job:
    return Job(r["id"], r["shot_id"], r["variant_id"], r["request_json"], r["state"], r["claimed_by"], r["created_at"])


def _shot(r: dict[str, Any]) -> Shot:
    return Shot(r["id"], r["project_id"], r["name"], int(r["position"]), r["created_at"])


def _variant(r: dict[str, Any]) -> Variant:
    return Variant(
        r["id"], r["shot_id"], r["prompt"], r["negative_prompt"], r["layout_json"], json.loads(r["settings_json"]),
        r["parent_id"], r["created_at"], r.get("note", "") or "",
    )


def _export(r: dict[str, Any]) -> Export:
    return Export(
        r["id"], r["take_id"], r["format"], Path(r["file"]), r["fps"],
        Path(r["timeline"]) if r["timeline"] else None, r["created_at"],
    )


def copy_into_media(library: Library, source: Path | str, suffix: str | None = None) -> Path:
    """Copy a file into the library's media folder atomically; returns the new path."""
    src = Path(source)
    dest = library.new_media_path(suffix or src.suffix)
    tmp = dest.with_name(leftovers.owned_name(dest.name, "tmp"))
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


__all__ = [
    "DB_NAME", "SCHEMA_VERSION", "MIGRATIONS", "Library", "LibraryError", "LibraryDamaged", "Project", "Shot",
    "Variant", "Take", "VariantNode", "VariantRow", "Job", "JOB_STATES", "copy_into_media", "Export",
]
