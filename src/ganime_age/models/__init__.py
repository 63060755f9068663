"""Model classes, one file per system; load any of them with :func:`ganime_age.hub.load_pretrained`."""
