"""``{% cmlims_result_list cl %}``: Django's ``result_list`` tag with the rows of ``cmlims.admin_rows``;
``{% cmlims_pagination cl %}``: its ``pagination`` tag, saying "10,000+" where a list stopped counting."""

from django.contrib.admin.templatetags.admin_list import pagination
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.template import Library

from cmlims.admin_rows import result_list

register = Library()


@register.tag(name="cmlims_result_list")
def result_list_tag(parser, token):
    return InclusionAdminNode(parser, token, func=result_list, template_name="change_list_results.html",
                              takes_context=False)


@register.tag(name="cmlims_pagination")
def pagination_tag(parser, token):
    """Django's ``pagination`` tag, its template saying when the count stopped at the paginator's cap."""
    return InclusionAdminNode(parser, token, func=pagination, template_name="cmlims_pagination.html",
                              takes_context=False)
