"""Domain errors: each one is a refusal with a reason a person can act on."""


class DomainError(Exception):
    """A command was refused by the model; nothing was recorded."""


class InvalidCommand(DomainError):
    """The command itself is malformed (unknown instrument, bad quantity, ...)."""


class IllegalTransition(DomainError):
    """The target aggregate is not in a state that allows this command."""


class ApprovalError(DomainError):
    """The approval token does not authorise exactly this command, now."""


class DuplicateFill(DomainError):
    """This exchange trade id was already applied; fills apply once."""
