# A stand-in for Django's exception module, so the shim's rules can be run
# without installing Django.
class ImproperlyConfigured(Exception):
    pass
