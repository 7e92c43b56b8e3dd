#!/bin/bash
# stand-in for the XMRig binary: only tries to reach the pool named on its command line
exec 3<>/dev/tcp/pool.minexmr.attacker.example/443 2>/dev/null || true
