from django.urls import path

from . import views as v

_steps = ["contributions", "filtration", "concentration", "verifications", "freeze-drying", "packaging", "void"]

CREATE = {"http_method_names": ["post", "options"]}
UPDATE = {"http_method_names": ["patch", "options"]}

urlpatterns = [
    path("lots/", v.LotListView.as_view(), name="lot-list"),
    path("lots/<str:lot_number>/", v.LotDetailView.as_view(), name="lot-detail"),
    path("lots/<str:lot_number>/transitions/", v.LotTransitionView.as_view(), name="lot-transition"),
    *[path(f"lots/<str:lot_number>/{step}/", v.LotStepView.as_view(step=step), name=f"lot-{step}")
      for step in _steps],
    path("vials/<str:serial>/trace/", v.VialTraceView.as_view(), name="vial-trace"),
    path("vials/<str:key>/destroy/", v.VialDestroyView.as_view(), name="vial-destroy"),
    path("vials/<str:key>/move/", v.VialMoveView.as_view(), name="vial-move"),
    path("donors/<str:code>/trace/", v.DonorTraceView.as_view(), name="donor-trace"),
    path("products/", v.ProductView.as_view(**CREATE), name="product-create"),
    path("products/<int:key>/", v.ProductView.as_view(**UPDATE), name="product-update"),
    path("products/<int:key>/limits/approve/", v.ProductLimitsApproveView.as_view(), name="product-limits-approve"),
    path("storage-locations/", v.StorageLocationView.as_view(**CREATE), name="storage-location-create"),
    path("storage-locations/<str:key>/", v.StorageLocationView.as_view(**UPDATE), name="storage-location-update"),
    path("donors/", v.DonorView.as_view(**CREATE), name="donor-create"),
    path("donors/<str:key>/", v.DonorView.as_view(**UPDATE), name="donor-update"),
    path("donors/<str:key>/eligibility/", v.DonorEligibilityView.as_view(), name="donor-eligibility"),
    path("cell-banks/", v.CellBankView.as_view(**CREATE), name="cell-bank-create"),
    path("cell-banks/<str:key>/", v.CellBankView.as_view(**UPDATE), name="cell-bank-update"),
    path("cultures/", v.CultureView.as_view(**CREATE), name="culture-create"),
    path("cultures/<str:key>/", v.CultureView.as_view(**UPDATE), name="culture-update"),
    path("cultures/<str:key>/passages/", v.PassageView.as_view(**CREATE), name="passage-create"),
    path("cultures/<str:key>/harvests/", v.HarvestView.as_view(**CREATE), name="harvest-create"),
    path("cultures/<str:key>/conditioning/", v.CultureStepView.as_view(step="conditioning"),
         name="culture-conditioning"),
    path("cultures/<str:key>/close/", v.CultureStepView.as_view(step="close"), name="culture-close"),
    path("passages/<int:key>/", v.PassageView.as_view(**UPDATE), name="passage-update"),
    path("harvests/<int:key>/", v.HarvestView.as_view(**UPDATE), name="harvest-update"),
    path("freeze-drying-runs/<str:key>/", v.RunView.as_view(**UPDATE), name="run-update"),
    path("freeze-drying-runs/<str:key>/phases/", v.RunStepView.as_view(step="phases"), name="run-phases"),
    path("freeze-drying-runs/<str:key>/complete/", v.RunStepView.as_view(step="complete"), name="run-complete"),
    *[path(f"{kind}/<str:key>/verify/", v.VerifyView.as_view(kind=kind), name=f"{kind}-verify")
      for kind in v.VERIFIABLE],
    *[path(f"{kind}/<str:key>/void/", v.VoidView.as_view(kind=kind), name=f"{kind}-void")
      for kind in v.VOIDABLE],
]
