"""What a training set must not contain: listed images and URLs, identifiable faces.

block_stage  BlockLists: drops samples on a block list right after the read (the Beam-free
             lists and matching are `curate.blocklist`; the download stage checks there too)
faces        face boxes: DataComp's `face_bboxes` column, or an offline detector (OpenCV Haar)
blur         img2dataset's BoundingBoxBlurrer geometry, as DataComp applied it
face_stage   BlurFaces: the last image stage, so scores and dedup saw the original
options      the face flags
"""
