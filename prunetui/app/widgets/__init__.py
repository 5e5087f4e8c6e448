"""The app's own widgets: one module per widget family."""
