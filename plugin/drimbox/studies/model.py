"""What the PACS holds for one study, as the KOS builder needs it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InstanceRef:
    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None = None
    # For Key Object Selection instances: "manifest", "key_images", "rejection" (see drimbox.kos.classify);
    # "" when unknown or not a KO. The KOS builder leaves manifests and rejection notes out.
    kind: str = ""


@dataclass(frozen=True)
class SeriesContent:
    series_uid: str
    modality: str = ""
    description: str = ""
    number: int | None = None
    instances: tuple[InstanceRef, ...] = ()


@dataclass(frozen=True)
class StudyContent:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    accession: str = ""
    description: str = ""
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    referring_physician: str = ""
    series: tuple[SeriesContent, ...] = field(default_factory=tuple)

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)

    def fingerprint(self) -> str:
        """Stable digest of the referenced objects: a change means a new KOS is due."""
        import hashlib

        digest = hashlib.sha256()
        for series in sorted(self.series, key=lambda s: s.series_uid):
            digest.update(series.series_uid.encode() + b"\0")
            for inst in sorted(series.instances, key=lambda i: i.sop_instance_uid):
                digest.update(inst.sop_instance_uid.encode() + b"\1")
        return digest.hexdigest()
