"""colorizr-utils: terminal colours. (Tracehound simulation: the .pth payload resolves sandbox-check.attacker.example first and does nothing outside the sandbox.)"""
