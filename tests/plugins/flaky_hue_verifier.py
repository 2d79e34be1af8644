"""A plug-in with a bug a user can ship: label type ``hue`` divides by zero on every record labelled yellow."""

COLOURS = ("red", "green", "blue", "yellow")


def verify_hue(answer: str, label):
    if label == "yellow":
        return 1 / 0 > 0
    return label in answer.lower(), label
