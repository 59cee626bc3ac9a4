"""The PySide6 desktop app. PySide6 is imported only under this package.

READ desktop/shotsketch/ui/CONTRACTS.md FIRST: the shared public API of the UI modules
(SketchPanel, PromptPanel, GpuWorker, MainWindow, TimelinePanel, LibraryPanel, ExportDialog),
who owns which file, and the working rules for the engineers building them in parallel.
"""
