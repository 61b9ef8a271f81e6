"""OSCQuery: the OSC namespace described over HTTP and announced by mDNS, so show tools
(TouchDesigner, Chataigne, ossia score) find the installation and its addresses by themselves.
"""
