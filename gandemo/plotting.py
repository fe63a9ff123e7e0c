"""matplotlib in a server with many threads. matplotlib is not thread-safe, and not only per figure:
mathtext caches what it parses for every thread at once, fonts included, so two threads laying out
mathtext (log-scale tick labels such as 10⁻², the keys' $D^*$) use one FreeType face together. Under
20 users FreeType then failed mid-frame ("FT_Load_Glyph ... too many hints", "invalid outline") and
once the whole server died. Every figure the app makes or draws does so holding LOCK: drawing is
mostly under the GIL anyway, so little runs in parallel that this stops."""

from __future__ import annotations

import threading

LOCK = threading.RLock()  # re-entrant: a figure's constructor may draw through its own methods
