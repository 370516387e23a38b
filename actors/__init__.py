"""The daemon's actors. Importing the package fixes thespian's TCP transport first
(thespian_compat): every process that starts or joins an actor system imports it
before creating one, and actor processes inherit the fix when they fork."""

from . import thespian_compat

thespian_compat.install()
