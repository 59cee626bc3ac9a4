"""The Shotsketch launcher: sets up the video engine (a uv environment with torch for this
computer's GPU) on first run, keeps it working (Repair, switch backend, Update), and starts the app.
It carries no torch: it is small, and frozen with PyInstaller."""
