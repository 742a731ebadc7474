"""Thin views over :class:`unlearn_studio.gui.app_model.AppModel`."""
