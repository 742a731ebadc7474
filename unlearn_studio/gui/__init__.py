"""The desktop application (PySide6 + pyqtgraph) over the Qt-free engine.

Modules here import the engine lazily (inside worker functions) so that the
window is on screen before torch and transformers are imported.
"""
