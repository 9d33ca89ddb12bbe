"""Where the site and the report service live, and how each links to the other.

The site (static, any host) and the report service may share one address, the host's
root or a sub-path (https://host/prevent/), or live apart (the service on a host of its
own). A link between the two is a path when they share an origin, so it works the same
behind any proxy name, and a full address when they do not.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from outreach.profile import Agency


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else f"{url}/"


def site_address(agency: Agency) -> str:
    """The site's root address, ending in a slash."""
    return _with_slash(str(agency.site_url))


def service_address(agency: Agency) -> str:
    """The report service's root address, ending in a slash: the site's unless set apart."""
    return _with_slash(str(agency.service_url or agency.site_url))


def path_of(address: str) -> str:
    """The path of an address, with its slashes: "/", or "/prevent/"."""
    return _with_slash(urlsplit(address).path or "/")


def _origin(address: str) -> tuple[str, str]:
    parts = urlsplit(address)
    return parts.scheme, parts.netloc.lower()


def same_origin(agency: Agency) -> bool:
    return _origin(site_address(agency)) == _origin(service_address(agency))


def service_path(agency: Agency) -> str:
    """Where the service's public pages sit on its own host: "/" or "/prevent/"."""
    return path_of(service_address(agency))


def site_path(agency: Agency) -> str:
    return path_of(site_address(agency))


def service_link_from_site(agency: Agency) -> str:
    """What the site puts before "report" and "status" in its links to the service."""
    if same_origin(agency):
        return service_path(agency)
    return service_address(agency)


def site_link_from_service(agency: Agency) -> str:
    """What the service's pages put before a site page's path in their links to the site."""
    if same_origin(agency):
        return site_path(agency)
    return site_address(agency)
