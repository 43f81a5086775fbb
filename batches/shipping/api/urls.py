from django.urls import path

from batches.shipping.api import views as v

app_prefix = "shipments/<int:pk>"

urlpatterns = [
    path("consignees/", v.ConsigneeListView.as_view(), name="consignee-list"),
    path("consignees/<int:pk>/", v.ConsigneeDetailView.as_view(), name="consignee-detail"),
    path("shipments/", v.ShipmentListView.as_view(), name="shipment-list"),
    path(f"{app_prefix}/", v.ShipmentDetailView.as_view(), name="shipment-detail"),
    path(f"{app_prefix}/allocate/", v.AllocateView.as_view(), name="shipment-allocate"),
    path(f"{app_prefix}/release-vials/", v.ReleaseVialsView.as_view(), name="shipment-release-vials"),
    path(f"{app_prefix}/pack/", v.PackView.as_view(), name="shipment-pack"),
    path(f"{app_prefix}/ship/", v.ShipView.as_view(), name="shipment-ship"),
    path(f"{app_prefix}/deliver/", v.DeliverView.as_view(), name="shipment-deliver"),
    path(f"{app_prefix}/receive/", v.ReceiveView.as_view(), name="shipment-receive"),
    path(f"{app_prefix}/cancel/", v.CancelView.as_view(), name="shipment-cancel"),
    path(f"{app_prefix}/temperature-log/", v.TemperatureLogView.as_view(), name="shipment-temperature-log"),
    path(f"{app_prefix}/temperature-log/chart/", v.TemperatureChartView.as_view(), name="shipment-temperature-chart"),
    path(f"{app_prefix}/labels/", v.LabelsView.as_view(), name="shipment-labels"),
    path(f"{app_prefix}/labels/dispositions/", v.LabelDispositionsView.as_view(),
         name="shipment-label-dispositions"),
    path(f"{app_prefix}/packing-list/", v.PackingListView.as_view(), name="shipment-packing-list"),
    # GET lots/<lot_number>/recall/ shares its path with QC's signed recall (POST): config/urls.py composes both.
    path("lots/<str:lot_number>/recall/csv/", v.LotRecallCsvView.as_view(), name="lot-recall-csv"),
    path("donors/<str:code>/recall/", v.DonorRecallView.as_view(), name="donor-recall"),
    path("donors/<str:code>/recall/csv/", v.DonorRecallCsvView.as_view(), name="donor-recall-csv"),
]
