"""dropreel on Modal: the app declaration, its plan as data, the container bodies, dispatch."""
