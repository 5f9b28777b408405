from django.contrib.auth import views as auth_views
from django.urls import path

from refiner import views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspace/switch/", views.switch_workspace, name="switch-workspace"),
    path("settings/", views.workspace_settings, name="settings"),
    path("settings/keys/", views.rotate_keys, name="rotate-keys"),
    path("settings/members/", views.member_add, name="member-add"),
    path("settings/members/<int:pk>/role/", views.member_role, name="member-role"),
    path("settings/members/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("install/", views.install, name="install"),
]
