"""``{% cmlims_result_list cl %}``: Django's ``result_list`` tag with the rows of ``cmlims.admin_rows``."""

from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.template import Library

from cmlims.admin_rows import result_list

register = Library()


@register.tag(name="cmlims_result_list")
def result_list_tag(parser, token):
    return InclusionAdminNode(parser, token, func=result_list, template_name="change_list_results.html",
                              takes_context=False)
