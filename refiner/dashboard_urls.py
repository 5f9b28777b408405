from django.urls import path

from refiner import views

urlpatterns = [
    path("", views.home, name="home"),
]
