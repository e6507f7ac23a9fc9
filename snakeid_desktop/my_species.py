"""The species taught on this computer ("My species"): kept, listed, renamed, removed, shared.

Each taught species is one single-species pack (``species_pack.py``) in
``<user data folder>/taught-species/<slug>.snakeid-species``. A pack records the model whose
network made its features. When the app's model changes:

- same feature extractor (the probe features match; e.g. a new head or new thresholds): the
  species is used as before, and its rows are simply fitted again from the stored features;
- another feature extractor: the species is listed as needing to be taught again, and not used.

The fitted rows of the current set are cached in ``.fitted-rows.pt`` beside the packs, keyed by
the model and every pack's checksum, so starting the app costs no fitting. A pack that cannot be
read is listed with the reason and left on disk untouched.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from . import __version__, paths
from .species_pack import (PACK_SUFFIX, ModelStamp, Pack, SpeciesPackError, TaughtSpecies, pack_bytes, probe_input,
                           read_pack, write_pack)

log = logging.getLogger(__name__)

FOLDER_NAME = "taught-species"
ROWS_CACHE = ".fitted-rows.pt"


@dataclass(frozen=True)
class StoredSpecies:
    """One pack file in the store: its species (None when unreadable) and whether the model can use it."""

    path: Path
    species: TaughtSpecies | None
    stamp: ModelStamp | None
    problem: str | None = None  # why it is not used (unreadable, made for another network)

    @property
    def usable(self) -> bool:
        return self.species is not None and self.problem is None

    def summary(self) -> dict:
        base = self.species.summary() if self.species is not None else {"file": self.path.name}
        return {**base, "model_version": self.stamp.model_version if self.stamp else None,
                "status": "ready" if self.usable else "not used", "problem": self.problem}


def current_stamp(predictor) -> ModelStamp:
    """The stamp of the predictor's bundled network (cached on it: the network never changes)."""
    stamp = getattr(predictor, "_model_stamp", None)
    if stamp is None:
        probe = predictor.features(probe_input(predictor.preprocessing.input_size))[0].float().clone()
        stamp = ModelStamp(predictor.bundle.version, predictor.bundle.metadata["weights_sha256"], probe)
        predictor._model_stamp = stamp
    return stamp


def _matches(query: str, species: TaughtSpecies) -> bool:
    q = " ".join(query.split()).casefold()
    return q in (species.slug.casefold(), species.scientific_name.casefold(), species.common_name.casefold())


class SpeciesStore:
    def __init__(self, folder: Path | str | None = None):
        self.folder = Path(folder) if folder is not None else paths.user_data_dir() / FOLDER_NAME

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.iterdir() if p.suffix == PACK_SUFFIX and p.is_file())
        except FileNotFoundError:
            return []

    def entries(self, predictor=None) -> list[StoredSpecies]:
        """Every pack file, readable or not; with ``predictor``, whether its network can use each."""
        stamp = current_stamp(predictor) if predictor is not None else None
        out = []
        for path in self._files():
            try:
                pack = read_pack(path)
            except SpeciesPackError as exc:
                out.append(StoredSpecies(path, None, None, str(exc)))
                continue
            for species in pack.species:
                problem = None
                if stamp is not None and not stamp.same_features(pack.stamp):
                    problem = (f"taught with model {pack.stamp.model_version}, whose network differs from this "
                               f"model {stamp.model_version}: teach it again from its photos")
                out.append(StoredSpecies(path, species, pack.stamp, problem))
        return out

    def all(self) -> list[TaughtSpecies]:
        return [e.species for e in self.entries() if e.species is not None]

    def active(self, predictor) -> list[TaughtSpecies]:
        return [e.species for e in self.entries(predictor) if e.usable]

    def _path_for(self, slug: str) -> Path:
        return self.folder / f"{slug}{PACK_SUFFIX}"

    def save(self, species: list[TaughtSpecies], predictor) -> None:
        """Keep each species as its own pack (replacing one of the same slug), stamped with the model."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = current_stamp(predictor)
        for sp in species:
            write_pack(self._path_for(sp.slug), Pack(stamp, (sp,), __version__))

    def find(self, name: str) -> StoredSpecies:
        found = [e for e in self.entries() if e.species is not None and _matches(name, e.species)]
        if not found:
            raise SpeciesPackError(f"No taught species is called {name!r} (see 'snakeid species list').")
        return found[0]

    def remove(self, name: str) -> TaughtSpecies | None:
        """Forget a species (by slug, scientific or common name), or a pack file that cannot be read
        (by its file name; None is returned then)."""
        unreadable = [e for e in self.entries() if e.species is None and e.path.name == name]
        if unreadable:
            unreadable[0].path.unlink()
            return None
        entry = self.find(name)
        entry.path.unlink()
        return entry.species

    def rename(self, name: str, common_name: str) -> TaughtSpecies:
        """Change the common name (the scientific name, and so the slug, stays)."""
        entry = self.find(name)
        renamed = entry.species.renamed(common_name)
        write_pack(entry.path, Pack(entry.stamp, (renamed,), __version__))
        return renamed

    def export(self, path: Path | str, names: list[str] | None = None) -> list[TaughtSpecies]:
        """Write the named species (default: all readable ones) into one pack file."""
        entries = [e for e in self.entries() if e.species is not None]
        if names:
            entries = [self.find(n) for n in names]
        if not entries:
            raise SpeciesPackError("There are no taught species to export.")
        stamps = {e.stamp.weights_sha256 for e in entries}
        if len(stamps) > 1:
            raise SpeciesPackError("These species were taught with different models; export them one at a time.")
        species = tuple(e.species for e in entries)
        slugs = [sp.slug for sp in species]
        if len(set(slugs)) != len(slugs):
            raise SpeciesPackError("A species is named twice.")
        write_pack(Path(path), Pack(entries[0].stamp, species, __version__))
        return list(species)

    def import_pack(self, path: Path | str, predictor, replace_existing: bool = False) -> list[TaughtSpecies]:
        """Add a pack's species. Refused, with nothing added, when it was made for another network, names
        a species SnakeID ships with, or one already taught (unless ``replace_existing``)."""
        pack = read_pack(path)
        stamp = current_stamp(predictor)
        if not stamp.same_features(pack.stamp):
            raise SpeciesPackError(
                f"{Path(path).name} was made for SnakeID model {pack.stamp.model_version}, and this SnakeID has model "
                f"{stamp.model_version} with a different network: ask for a pack made with model {stamp.model_version}, "
                "or teach the species again from its photos."
            )
        bundled = {predictor.catalogue.get(c).scientific_name.casefold() for c in predictor.bundle.species_classes}
        existing = {sp.slug for sp in self.all()}
        for sp in pack.species:
            if sp.scientific_name.casefold() in bundled:
                raise SpeciesPackError(f"SnakeID already knows {sp.scientific_name}; the pack was not imported.")
            if sp.slug in existing and not replace_existing:
                raise SpeciesPackError(
                    f"{sp.scientific_name} is already taught on this computer; remove it first to import this one."
                )
        self.save(list(pack.species), predictor)
        return list(pack.species)

    # --- the fitted rows ---------------------------------------------------------------------------

    def _rows_key(self, predictor, species: list[TaughtSpecies]) -> str:
        from .taught_head import L2_PENALTY, MAX_ITERATIONS, REPLAY_WEIGHT

        digest = hashlib.sha256()
        meta = predictor.bundle.metadata
        digest.update(f"{meta.get('metadata_sha256')}|{meta['weights_sha256']}|{meta.get('replay_sha256')}|"
                      f"{REPLAY_WEIGHT}|{L2_PENALTY}|{MAX_ITERATIONS}".encode())
        for sp in species:
            digest.update(pack_bytes(Pack(current_stamp(predictor), (sp,), "")))
        return digest.hexdigest()

    def fitted_rows(self, predictor, species: list[TaughtSpecies]):
        """Rows for ``species`` beside the predictor's bundled head: from the cache, else fitted (and cached)."""
        from .taught_head import TaughtRows, bundle_replay, fit_rows

        key = self._rows_key(predictor, species)
        cache = self.folder / ROWS_CACHE
        slugs = tuple(sp.slug for sp in species)
        try:
            data = torch.load(cache, map_location="cpu", weights_only=True)
            if data.get("key") == key and tuple(data.get("slugs", ())) == slugs:
                return TaughtRows(slugs, data["weight"], data["bias"]), key
        except FileNotFoundError:
            pass
        except Exception as exc:  # a damaged cache only costs a refit
            log.warning("ignoring the fitted-rows cache %s (%s)", cache, exc)
        weight, bias = predictor.bundled_head
        rows = fit_rows([sp.features.float() for sp in species], bundle_replay(predictor.bundle), weight, bias,
                        predictor.bundle.temperature, slugs)
        try:
            from .bundle import _atomic_write_bytes

            buffer = io.BytesIO()
            torch.save({"key": key, "slugs": list(slugs), "weight": rows.weight, "bias": rows.bias}, buffer)
            self.folder.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(cache, lambda fh: fh.write(buffer.getvalue()))
        except OSError as exc:
            log.warning("could not cache the fitted rows in %s (%s)", cache, exc)
        return rows, key


def attach_taught(predictor, store: SpeciesStore | None = None) -> list[StoredSpecies]:
    """Make ``predictor`` answer with every usable taught species too; returns every entry (usable or not).

    A model without replay features cannot fit rows: the species are then listed as not used.
    """
    from .errors import ModelBundleError

    store = store or SpeciesStore()
    entries = store.entries(predictor)
    usable = [e.species for e in entries if e.usable]
    if not usable:
        predictor.set_taught(())
        return entries
    try:
        rows, key = store.fitted_rows(predictor, usable)
    except ModelBundleError as exc:
        predictor.set_taught(())
        return [StoredSpecies(e.path, e.species, e.stamp, e.problem or str(exc)) for e in entries]
    if key != predictor.taught_digest:  # unchanged: keep the answer space (and its traced batch model)
        predictor.set_taught(usable, rows, key)
    return entries
