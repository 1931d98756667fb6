#!/usr/bin/env python3
"""VR-like traffic on the command line: send, receive, analyse (see sdn_app/lab/vr.py).

    vr_traffic.py recv --port 9100 --seconds 12 --log recv.bin
    vr_traffic.py send --dst 10.0.0.2 --streams 2 --scale 0.1 --seconds 10 --log sent.bin
    vr_traffic.py analyse --sent sent.bin --received recv.bin [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdn_app.lab.vr import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
