"""The KOS manifest: what the box publishes to the DMP for one study.

- :func:`drimbox.kos.builder.build_manifest` / :func:`~drimbox.kos.builder.encode_manifest`: the manifest.
- :mod:`drimbox.kos.classify`: manifest / key images / rejection notes, and applying IOCM rejections.
- :func:`drimbox.kos.consistency.find_conflicts`: report vs images disagreements.
- :func:`drimbox.kos.reader.read_manifest`: what a manifest references (consumer side).
- :func:`drimbox.kos.files.study_content_from_files`: a StudyContent from files on disk.
"""
