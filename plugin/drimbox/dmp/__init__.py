"""The DMP (IHE XDS.b) client of the box.

``client.DmpClient`` is the entry point. Pure builders: ``lot`` (ids + DSG + metadata), ``metadata`` (ebRIM),
``dsg`` (IHE DSG signature document), ``vihf`` (SAML assertion), ``queries``/``retrieve``/``patients``
(requests and answers), ``soap``/``mtom``/``transactions`` (transport format), ``render`` (a lot without sending).
"""
