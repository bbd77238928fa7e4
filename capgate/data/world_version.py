"""The synthetic world's generator version, the one number that says which world a spec's
``world: {seed, config}`` produces.

It is part of every run and stage id that reads the world (the spec loader writes it into the
study's ``world`` as ``generator``), so results trained on an older world are never taken for
results of the current one, and each version's world lives in its own folder. Worlds up to
version :data:`IDS_WITHOUT_GENERATOR` left it out of the ids; at that version it is still left
out, so their stores stay valid.

History: 2 put LLVIP XMLs in the authors' box convention and DomainNet file numbers at label + 1;
3: eight LLVIP cameras and a wider range of pedestrian sizes, FLIR persons nearer and more
frequent, DomainNet-like paintings with a lighter brush texture; 4: FLIR-like persons and bicycles
stand from 45 % of the way to the horizon down to the camera (0.29-0.65 of the frame height before the size jitter), so
the cross-dataset eval set measures detection rather than objects a few pixels tall; 5: DomainNet-like
paintings are no longer posterised to 7 values per channel (the objects' shading vanished into the
canvas). Only the DomainNet-like painting images differ from version 4.
"""

GENERATOR_VERSION = 5
#: The last version whose ids do not include it.
IDS_WITHOUT_GENERATOR = 3
