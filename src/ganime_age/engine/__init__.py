"""The fitted edit engine: age and expression edits of real photos at their own resolution, no network.

One module a job: ``config`` (its settings), ``face`` (one face of one photo, prepared for slider moves) and
``tables`` (what the jobs read of the fitted engine), which every job imports; ``model`` (the Hub model holding
the fitted tables, preparing a face once per photo, an edit as a short sequence of the jobs below), which
imports the jobs and none of them imports; ``frames`` (the template and the
engine grid, and the one mapping between them and the photo), ``geometry`` (landmark displacements, the head's
growth and sagging, and the backward map), ``appearance`` (the skin's change: ratio images, detail bands, folds,
a child's lower face, AU ratio images), ``lines`` (an old face's lines where it has none), ``exemplars`` (real faces of the target age matched to the
person, whose features an edit across decades or into childhood takes, in the photo's light), ``hair`` (greying), ``beard`` (facial hair, lifted
from faces made children), ``texture`` (hair's strands told from skin), ``mouth`` (the painted interior), ``pixels`` (reading and repainting the photo) and
``turning`` (the photo's own head drawn again at another pose, for reenactment).

Why fitted: two CPU cores cannot train a generator to move a face's structure, and no pretrained face
generator can be had, but the classical prototype-and-transform methods need only means and least
squares (Burt & Perrett 1995; Tiddeman, Burt & Perrett 2001; expression ratio images, Liu, Shan & Zhang
2001). Everything here was fitted in CPU minutes by ``training/fit_engine.py`` on UTKFace (ages) and
CFEE (same-person posed expressions with FACS codes); the trained networks refine its output.

An edit has two parts, both driven by MediaPipe's 478-point mesh:

- **geometry**: landmark displacements in the face's own 3-D frame (an age shape trajectory per sex and a
  displacement basis per AU unit, in the canonical face's centimetres), rotated into the photo's head
  pose, spread over the pixels by the mesh's piecewise-linear interpolation and continued smoothly
  beyond the face, fading to nothing; the head's growth (a cardioidal strain: Todd, Mark, Shaw & Pittenger
  1980) and an old face's sagging move its outline; the age's motion is integrated as a velocity, so the
  map never folds; one backward map and one ``cv2.remap`` of the photo's region;
- **appearance**, in the *shape-normalised template* (every training face warped onto the canonical
  face's shape before averaging, so the means are sharp): log-domain prototype differences (a ratio
  image: shading, folds, colour), the person's own detail bands scaled by the prototypes' local detail
  energy ratio (wrinkles deepen with age, skin smooths when young; Tiddeman et al.), and per-AU ratio
  images (frown lines, nasolabial folds). They are mapped onto the face through its own mesh and
  applied multiplicatively, so the person's texture stays theirs.

Do no harm: an edit that changes nothing returns the input's pixels, and only the region the edit
moves or repaints is touched; the rest of the photo is the input, byte for byte.
"""

from ganime_age.engine.appearance import TextureChange
from ganime_age.engine.config import FittedEngineConfig
from ganime_age.engine.model import EngineFace, FittedEngine

__all__ = ["EngineFace", "FittedEngine", "FittedEngineConfig", "TextureChange"]
