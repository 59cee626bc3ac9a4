"""Icons, theme and example shots; shipped as the package `shotsketch.resources`."""
