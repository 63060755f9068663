"""MediaPipe's face mesh by index: how many points, and which of them make each part of a face.

One place for every index set the package reads landmarks by (the 478 refined landmarks: 468 mesh vertices and
two irises of five points), so the engine, the analysis, the reenactor and the training code agree on them.
"""

from __future__ import annotations

Connection = tuple[int, int]

NUM_LANDMARKS = 478  # MediaPipe's refined landmarks: the mesh and two irises
NUM_MESH_VERTICES = 468  # the mesh alone (the canonical face's vertices)

# --- MediaPipe face-mesh topology (subject's left/right, as MediaPipe names them) -----------------------------
FACE_OVAL: tuple[Connection, ...] = (
    (10, 338), (338, 297), (297, 332), (332, 284), (284, 251), (251, 389), (389, 356), (356, 454), (454, 323),
    (323, 361), (361, 288), (288, 397), (397, 365), (365, 379), (379, 378), (378, 400), (400, 377), (377, 152),
    (152, 148), (148, 176), (176, 149), (149, 150), (150, 136), (136, 172), (172, 58), (58, 132), (132, 93),
    (93, 234), (234, 127), (127, 162), (162, 21), (21, 54), (54, 103), (103, 67), (67, 109), (109, 10),
)  # fmt: skip
LEFT_EYE: tuple[Connection, ...] = (
    (263, 249), (249, 390), (390, 373), (373, 374), (374, 380), (380, 381), (381, 382), (382, 362),
    (263, 466), (466, 388), (388, 387), (387, 386), (386, 385), (385, 384), (384, 398), (398, 362),
)  # fmt: skip
LEFT_EYEBROW: tuple[Connection, ...] = (
    (276, 283), (283, 282), (282, 295), (295, 285), (300, 293), (293, 334), (334, 296), (296, 336),
)  # fmt: skip
RIGHT_EYE: tuple[Connection, ...] = (
    (33, 7), (7, 163), (163, 144), (144, 145), (145, 153), (153, 154), (154, 155), (155, 133),
    (33, 246), (246, 161), (161, 160), (160, 159), (159, 158), (158, 157), (157, 173), (173, 133),
)  # fmt: skip
RIGHT_EYEBROW: tuple[Connection, ...] = (
    (46, 53), (53, 52), (52, 65), (65, 55), (70, 63), (63, 105), (105, 66), (66, 107),
)  # fmt: skip
LIPS: tuple[Connection, ...] = (
    (61, 146), (146, 91), (91, 181), (181, 84), (84, 17), (17, 314), (314, 405), (405, 321), (321, 375),
    (375, 291), (61, 185), (185, 40), (40, 39), (39, 37), (37, 0), (0, 267), (267, 269), (269, 270),
    (270, 409), (409, 291), (78, 95), (95, 88), (88, 178), (178, 87), (87, 14), (14, 317), (317, 402),
    (402, 318), (318, 324), (324, 308), (78, 191), (191, 80), (80, 81), (81, 82), (82, 13), (13, 312),
    (312, 311), (311, 310), (310, 415), (415, 308),
)  # fmt: skip
LEFT_IRIS: tuple[Connection, ...] = ((474, 475), (475, 476), (476, 477), (477, 474))
RIGHT_IRIS: tuple[Connection, ...] = ((469, 470), (470, 471), (471, 472), (472, 469))
RIGHT_PUPIL = 468  # iris centres (refined landmarks)
LEFT_PUPIL = 473


# --- point sets the engine and the analysis read ---------------------------------------------------------------
FACE_LEFT, FACE_RIGHT = 234, 454
CHIN = 152  # the mesh's lowest point on the chin
NOSE_TIP = 1
NOSE_BASE = (1, 64, 98, 97, 2, 326, 327, 294)  # the nose's tip, wings and nostrils (their dark is no crease)
MOUTH_CENTRE = 13  # the upper lip's inner centre
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
UPPER_INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
RIGHT_EYE_CONTOUR = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_CONTOUR = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
BROW_TOPS = (105, 66, 107, 334, 296, 336)  # the upper edge of both eyebrows
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)  # lower edge outer to inner, then upper edge back
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
CHEEK_POINTS = (50, 280, 101, 330, 117, 346)  # skin the mouth interior's brightness is measured against
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
